using System.Text.RegularExpressions;

namespace Irr.IO;

/// <summary>
/// The local Hugging Face Hub cache, read as <c>huggingface_hub</c> lays it out (its "Understand caching" guide,
/// <c>constants.py</c>, <c>file_download.py</c>): <c>&lt;cache&gt;/models--org--name/refs/&lt;revision&gt;</c> holds a
/// commit, <c>snapshots/&lt;commit&gt;/&lt;file&gt;</c> are relative symlinks into <c>../../blobs/&lt;etag&gt;</c>.
/// Read only: nothing is downloaded. The tree is untrusted: a symlink that leaves the repo folder is refused and a
/// ref file is read up to <see cref="MaxRefBytes"/>.
/// </summary>
public static partial class HubCache
{
    /// <summary>The default revision of a reference without <c>@</c>.</summary>
    public const string DefaultRevision = "main";

    /// <summary>The longest ref file read (a commit is 40 hex digits).</summary>
    public const int MaxRefBytes = 256;

    /// <summary>The most entries checked in one snapshot directory tree.</summary>
    public const int MaxSnapshotEntries = 100_000;

    private static readonly AsyncLocal<string?> OverrideDirectory = new();

    /// <summary>
    /// Uses <paramref name="directory"/> as the cache in this async flow instead of the environment's (tests, which run
    /// in parallel and in-process and so cannot set <c>HF_HUB_CACHE</c>); dispose to restore.
    /// </summary>
    public static IDisposable Override(string directory)
    {
        string? previous = OverrideDirectory.Value;
        OverrideDirectory.Value = directory;
        return new Restore(() => OverrideDirectory.Value = previous);
    }

    private sealed class Restore(Action action) : IDisposable
    {
        public void Dispose() => action();
    }

    /// <summary>
    /// The cache directory as <c>huggingface_hub.constants.HF_HUB_CACHE</c> computes it: <c>HF_HUB_CACHE</c>, else the
    /// legacy <c>HUGGINGFACE_HUB_CACHE</c>, else <c>HF_HOME/hub</c>, with <c>HF_HOME</c> defaulting to
    /// <c>$XDG_CACHE_HOME/huggingface</c> and that to <c>~/.cache/huggingface</c>; a leading <c>~</c> expanded.
    /// </summary>
    public static string Directory => OverrideDirectory.Value ?? FromEnvironment(Environment.GetEnvironmentVariable);

    /// <summary>The cache directory for the environment <paramref name="variable"/> reads (see <see cref="Directory"/>).</summary>
    public static string FromEnvironment(Func<string, string?> variable)
    {
        string? NonEmpty(string name) => variable(name) is { Length: > 0 } v ? v : null;
        return ExpandUser(NonEmpty("HF_HUB_CACHE") ?? NonEmpty("HUGGINGFACE_HUB_CACHE") ?? Path.Combine(Home(variable), "hub"));
    }

    /// <summary>
    /// <c>HF_HOME</c> as <c>huggingface_hub.constants</c> computes it: <c>HF_HOME</c>, else <c>$XDG_CACHE_HOME/huggingface</c>,
    /// else <c>~/.cache/huggingface</c>; a leading <c>~</c> expanded. The token file <c>HF_HOME/token</c> lives there.
    /// </summary>
    public static string Home(Func<string, string?> variable)
    {
        string? NonEmpty(string name) => variable(name) is { Length: > 0 } v ? v : null;
        string xdg = NonEmpty("XDG_CACHE_HOME") ?? Path.Combine("~", ".cache");
        return ExpandUser(NonEmpty("HF_HOME") ?? Path.Combine(xdg, "huggingface"));
    }

    /// <summary>Whether <c>HF_HUB_OFFLINE</c> is set to a true value ("1", "ON", "YES", "TRUE", as huggingface_hub's <c>_is_true</c>).</summary>
    public static bool Offline => OfflineIn(Environment.GetEnvironmentVariable);

    /// <summary>Whether the environment <paramref name="variable"/> reads sets <c>HF_HUB_OFFLINE</c> to a true value (see <see cref="Offline"/>).</summary>
    public static bool OfflineIn(Func<string, string?> variable) =>
        variable("HF_HUB_OFFLINE")?.Trim().ToUpperInvariant() is "1" or "ON" or "YES" or "TRUE";

    /// <summary>"~" or "~/…" with the user's home directory, as Python's <c>os.path.expanduser</c>.</summary>
    public static string ExpandUser(string path) =>
        path == "~" || path.StartsWith("~/", StringComparison.Ordinal) || path.StartsWith("~" + Path.DirectorySeparatorChar, StringComparison.Ordinal)
            ? Environment.GetFolderPath(Environment.SpecialFolder.UserProfile) + path[1..]
            : path;

    [GeneratedRegex(@"^(\b[\w\-.]+\b/)?\b[\w\-.]+\b$")]
    private static partial Regex RepoIdPattern();

    [GeneratedRegex("^[0-9a-f]{40}$")]
    private static partial Regex CommitPattern();

    /// <summary>Whether <paramref name="revision"/> is a full commit hash (40 lower-case hex digits, huggingface_hub's <c>REGEX_COMMIT_HASH</c>).</summary>
    public static bool IsCommit(string revision) => CommitPattern().IsMatch(revision);

    /// <summary>
    /// The reason <paramref name="repoId"/> is not a repo ID as <c>huggingface_hub.utils.validate_repo_id</c> checks it
    /// (at most one '/', letters, digits, '-', '_', '.', no "--" or "..", not ending in ".git", at most 96 characters), or null.
    /// </summary>
    public static string? RepoIdProblem(string repoId)
    {
        if (repoId.Count(c => c == '/') > 1) return "a repo ID is 'name' or 'namespace/name'";
        if (!RepoIdPattern().IsMatch(repoId) || !repoId.All(char.IsAscii))
            return "a repo ID holds letters, digits, '-', '_' and '.', and starts and ends with a letter or digit";
        if (repoId.Contains("--", StringComparison.Ordinal) || repoId.Contains("..", StringComparison.Ordinal)) return "a repo ID cannot hold '--' or '..'";
        if (repoId.EndsWith(".git", StringComparison.Ordinal)) return "a repo ID cannot end in '.git'";
        if (repoId.Length > 96) return "a repo ID is at most 96 characters";
        return null;
    }

    /// <summary>The repo's folder name, as <c>file_download.repo_folder_name</c>: "models--org--name" ("datasets--…" for data sets).</summary>
    /// <param name="repoId">"org/name" or "name".</param>
    /// <param name="repoType">"model" or "dataset".</param>
    public static string RepoFolderName(string repoId, string repoType = "model") => $"{repoType}s--" + string.Join("--", repoId.Split('/'));

    /// <summary>
    /// The repo ID and commit of a model snapshot directory <c>…/models--org--name/snapshots/&lt;commit&gt;</c> (what
    /// <see cref="Resolve"/> returns), or null for any other path: what provenance records of a model read from the cache.
    /// </summary>
    public static (string RepoId, string Commit)? RepoOfSnapshot(string path) =>
        RepoOfCachedPath(path) is { RepoType: "model", Path: "" } r ? (r.RepoId, r.Commit) : null;

    /// <summary>Where a path of the cache came from: its repo, type, commit and path in the repo (what reports record beside the path).</summary>
    /// <param name="RepoId">"org/name".</param>
    /// <param name="RepoType">"model" or "dataset".</param>
    /// <param name="Commit">The 40-hex commit.</param>
    /// <param name="Path">The file's path in the repo, "" for the snapshot itself.</param>
    public sealed record Source(string RepoId, string RepoType, string Commit, string Path);

    /// <summary>
    /// How a message names <paramref name="path"/>: a model snapshot of the cache as its Hub ID and commit
    /// (<c>org/name@0123abc…</c>, what the user gave rather than the cache's path), any other path as itself.
    /// </summary>
    public static string Display(string path) => RepoOfSnapshot(path) is var (repoId, commit) ? $"{repoId}@{commit}" : path;

    /// <summary>
    /// The repo of a path in a cache snapshot: <c>…/{models|datasets}--org--name/snapshots/&lt;commit&gt;[/path/in/repo]</c>
    /// as its <see cref="Source"/> (the path in the repo with '/', "" for the snapshot itself); null for any other path
    /// (or none). Read from the path's text only (the file is not opened).
    /// </summary>
    public static Source? RepoOfCachedPath(string? path)
    {
        if (string.IsNullOrEmpty(path) || path.Contains('\0')) return null;
        var parts = Path.GetFullPath(path).TrimEnd(Path.DirectorySeparatorChar).Split(Path.DirectorySeparatorChar);
        for (int i = parts.Length - 1; i >= 2; i--)
        {
            if (!IsCommit(parts[i]) || parts[i - 1] != "snapshots") continue;
            string folder = parts[i - 2];
            string? type = folder.StartsWith("models--", StringComparison.Ordinal) ? "model"
                : folder.StartsWith("datasets--", StringComparison.Ordinal) ? "dataset" : null;
            if (type is null) continue;
            string repoId = folder[(type.Length + 3)..].Replace("--", "/");
            if (RepoIdProblem(repoId) is not null) continue;
            return new Source(repoId, type, parts[i], string.Join('/', parts[(i + 1)..]));
        }
        return null;
    }

    /// <summary>
    /// The snapshot directory of <paramref name="repoId"/> at <paramref name="revision"/> in the cache at
    /// <paramref name="cache"/>: a branch or tag through <c>refs/&lt;revision&gt;</c>, a 40-hex commit directly (as
    /// <c>try_to_load_from_cache</c>), with the commit it resolved to. Every symlink under the snapshot is checked to stay
    /// inside the repo folder.
    /// </summary>
    /// <exception cref="IrrException">The repo or revision is not in the cache, a ref file is malformed, or a symlink leaves the repo folder.</exception>
    public static (string Snapshot, string Commit) Resolve(string repoId, string revision, string cache, string repoType = "model")
    {
        if (RepoIdProblem(repoId) is { } problem) throw new IrrException($"'{Diagnostics.Escape(repoId)}': {problem}");
        string what = $"{repoId}@{Diagnostics.Escape(revision)}";
        if (revision.Length == 0 || revision.Split('/').Any(p => p is "" or "." or ".."))
            throw new IrrException($"{what}: not a revision");
        string repo = Path.Combine(cache, RepoFolderName(repoId, repoType));
        if (!System.IO.Directory.Exists(repo))
            throw new IrrException($"{what}: no such local directory, and the {repoType} repo {repoId} is not in the Hugging Face cache at {Diagnostics.Escape(cache)}{Hint(repoId, revision)}");
        string commit = IsCommit(revision) ? revision : ReadRef(repo, revision, what, cache, repoId);
        string snapshot = Path.Combine(repo, "snapshots", commit);
        if (!System.IO.Directory.Exists(snapshot))
            throw new IrrException($"{what}: commit {commit} is not in the Hugging Face cache at {Diagnostics.Escape(cache)}{Hint(repoId, revision)}");
        RequireInside(repo, snapshot, what);
        return (snapshot, commit);
    }

    private static string Hint(string repoId, string revision) =>
        Offline
            ? " (HF_HUB_OFFLINE is set)"
            : $" (fill it with `hf download {repoId}{(revision == DefaultRevision ? "" : " --revision " + revision)}`)";

    private static string ReadRef(string repo, string revision, string what, string cache, string repoId)
    {
        string path = Path.Combine(repo, "refs", revision);
        if (!File.Exists(path))
            throw new IrrException($"{what}: revision {Diagnostics.Escape(revision)} is not in the Hugging Face cache at {Diagnostics.Escape(cache)}{Hint(repoId, revision)}");
        RequireInside(repo, path, what);
        using var stream = new FileStream(path, FileMode.Open, FileAccess.Read);
        var buffer = new byte[MaxRefBytes + 1];
        int n = stream.ReadAtLeast(buffer, buffer.Length, throwOnEndOfStream: false);
        string commit = System.Text.Encoding.ASCII.GetString(buffer, 0, n).Trim();
        if (n > MaxRefBytes || !IsCommit(commit))
            throw new IrrException($"{what}: {Diagnostics.Escape(path)} does not hold a commit hash");
        return commit;
    }

    /// <summary>Refuses <paramref name="path"/> (and, for a directory, every entry under it) when it or a symlink on the way resolves outside <paramref name="repo"/>.</summary>
    private static void RequireInside(string repo, string path, string what)
    {
        string root = Path.GetFullPath(repo).TrimEnd(Path.DirectorySeparatorChar) + Path.DirectorySeparatorChar;
        void Check(FileSystemInfo entry)
        {
            string target = entry.LinkTarget is null ? entry.FullName : (entry.ResolveLinkTarget(returnFinalTarget: true)?.FullName ?? entry.FullName);
            string real = RealPath(target);
            if (!real.StartsWith(root, StringComparison.Ordinal) && real + Path.DirectorySeparatorChar != root)
                throw new IrrException($"{what}: {Diagnostics.Escape(entry.FullName)} links outside the repo folder {Diagnostics.Escape(repo)}");
        }
        root = RealPath(root.TrimEnd(Path.DirectorySeparatorChar)) + Path.DirectorySeparatorChar;
        if (File.Exists(path)) { Check(new FileInfo(path)); return; }
        var dir = new DirectoryInfo(path);
        Check(dir);
        int count = 0;
        foreach (var entry in dir.EnumerateFileSystemInfos("*", new EnumerationOptions { RecurseSubdirectories = true, AttributesToSkip = 0 }))
        {
            if (++count > MaxSnapshotEntries) throw new IrrException($"{what}: {Diagnostics.Escape(path)} holds more than {MaxSnapshotEntries} entries");
            Check(entry);
        }
    }

    /// <summary>
    /// Creates <paramref name="directory"/> (a folder under <paramref name="repo"/> that a download writes in: blobs,
    /// snapshots/&lt;commit&gt;/…, refs/…) and refuses it when it, or a symlink on the way, resolves outside the repo
    /// folder: a cache written by someone else cannot make a download write elsewhere.
    /// </summary>
    /// <exception cref="IrrException">The directory resolves outside the repo folder.</exception>
    internal static void RequireWritableInside(string repo, string directory, string what)
    {
        System.IO.Directory.CreateDirectory(directory);
        string root = RealPath(Path.GetFullPath(repo).TrimEnd(Path.DirectorySeparatorChar)) + Path.DirectorySeparatorChar;
        string real = RealPath(Path.GetFullPath(directory).TrimEnd(Path.DirectorySeparatorChar)) + Path.DirectorySeparatorChar;
        if (!real.StartsWith(root, StringComparison.Ordinal))
            throw new IrrException($"{what}: {Diagnostics.Escape(directory)} links outside the repo folder {Diagnostics.Escape(repo)}; refused to write there");
    }

    /// <summary>The path with every symlink on the way resolved (the last component and each parent).</summary>
    private static string RealPath(string path, int depth = 0)
    {
        if (depth > 64) throw new IrrException($"{Diagnostics.Escape(path)}: too many levels of symbolic links");
        string full = Path.GetFullPath(path);
        string? parent = Path.GetDirectoryName(full);
        if (parent is null) return full;
        string realParent = RealPath(parent, depth + 1);
        string joined = Path.Combine(realParent, Path.GetFileName(full));
        var info = new FileInfo(joined);
        return info.LinkTarget is null ? joined : RealPath(Path.GetFullPath(info.LinkTarget, realParent), depth + 1);
    }
}
