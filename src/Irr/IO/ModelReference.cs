namespace Irr.IO;

/// <summary>
/// Where a model or adapter comes from: a local path, or a Hugging Face Hub repo <c>org/name[@revision]</c> (as
/// transformers' <c>from_pretrained</c> and mergekit's <c>path@revision</c> take it), resolved from the local Hub cache
/// (<see cref="HubCache"/>) to its snapshot directory.
/// </summary>
/// <param name="Text">The reference as given.</param>
/// <param name="RepoId">The Hub repo ("org/name"), or null for a local path.</param>
/// <param name="Revision">The branch, tag or commit asked for ("main" when none is given), or null for a local path.</param>
public sealed record ModelReference(string Text, string? RepoId, string? Revision)
{
    /// <summary>Whether it names a Hub repo.</summary>
    public bool IsHub => RepoId is not null;

    /// <summary>
    /// Reads <paramref name="text"/>: a local path when it exists on disk or starts with "./", "../", "/" or "~" (or is
    /// rooted), else a Hub ID <c>org/name[@revision]</c> when it is one (<see cref="HubCache.RepoIdProblem"/>), else a
    /// local path (which then does not exist, and is refused as one).
    /// </summary>
    /// <param name="text">The reference as given.</param>
    /// <param name="baseDirectory">The directory a relative path is relative to (a recipe's); default: the current one.</param>
    public static ModelReference Parse(string text, string? baseDirectory = null)
    {
        if (LooksLocal(text, baseDirectory ?? System.IO.Directory.GetCurrentDirectory())) return new ModelReference(text, null, null);
        int at = text.IndexOf('@');
        string repoId = at < 0 ? text : text[..at];
        string revision = at < 0 ? HubCache.DefaultRevision : text[(at + 1)..];
        return repoId.Contains('/') && HubCache.RepoIdProblem(repoId) is null && revision.Length > 0
            ? new ModelReference(text, repoId, revision)
            : new ModelReference(text, null, null);
    }

    /// <summary>
    /// Whether <paramref name="text"/>, given relative to <paramref name="baseDirectory"/>, names something on the Hub
    /// rather than a local path: a repo <c>org/name[@revision]</c> for a model option (<paramref name="repo"/>), an
    /// <c>hf://</c> file for a data option (<paramref name="file"/>). What a recipe keeps as given instead of making it a path.
    /// </summary>
    public static bool IsRemote(string text, string baseDirectory, bool repo, bool file) =>
        (file && Data.HubDataPath.IsHubPath(text)) || (repo && Parse(text, baseDirectory).IsHub);

    /// <summary>The scheme of a Hub file reference, <c>hf://</c>.</summary>
    public const string HfScheme = "hf://";

    private static bool LooksLocal(string text, string baseDirectory) =>
        File.Exists(Path.Combine(baseDirectory, text)) || System.IO.Directory.Exists(Path.Combine(baseDirectory, text)) || Path.IsPathRooted(text)
        || text.StartsWith("./", StringComparison.Ordinal) || text.StartsWith("../", StringComparison.Ordinal)
        || text.StartsWith('~') || text.StartsWith(".\\", StringComparison.Ordinal);

    /// <summary>
    /// The directory to open: the path itself, or the Hub repo's snapshot with the commit it resolved to, through
    /// <see cref="HubClient.Current"/>: read from the cache offline (<c>HF_HUB_OFFLINE</c>) or when the commit's files are
    /// there, else downloaded into it (only the files <see cref="Needed"/> picks; a bar per file through <see cref="HubClient.Observe"/>).
    /// </summary>
    /// <exception cref="IrrException">The repo, revision or a needed file does not exist, is gated or private, cannot be fetched, or the cache entry is unsafe; one line.</exception>
    /// <exception cref="OperationCanceledException">A stop was requested (only resumable <c>.incomplete</c> files are left).</exception>
    public (string Path, string? Commit) Resolve() => Resolve(Needed);

    /// <summary><see cref="Resolve()"/> fetching the files <paramref name="select"/> picks (<see cref="Needed"/>, <see cref="TokenizerFiles"/>).</summary>
    public (string Path, string? Commit) Resolve(Func<IReadOnlyList<string>, IReadOnlyList<string>> select)
    {
        if (!IsHub) return (Text, null);
        var (snapshot, commit) = HubClient.Current.Snapshot(RepoId!, Revision!, "model", select);
        return (snapshot, commit);
    }

    /// <summary>
    /// The files a command that only tokenizes needs (irr tokenize, chat-format): the configs, tokenizer files and chat
    /// templates of <see cref="HubFiles.ModelFiles"/> and an adapter's config, without the weights.
    /// </summary>
    public static IReadOnlyList<string> TokenizerFiles(IReadOnlyList<string> files) =>
        files.Where(f => HubFiles.ModelFiles.Contains(f) || f == LoraAdapter.ConfigFile || f.StartsWith("additional_chat_templates/", StringComparison.Ordinal)).ToList();

    /// <summary>
    /// The files a model or adapter option needs from a repo's file list: a PEFT adapter's (<see cref="HubFiles.Adapter"/>)
    /// when the repo holds <c>adapter_config.json</c> and no <c>config.json</c>, else a model's (<see cref="HubFiles.Model"/>).
    /// </summary>
    public static IReadOnlyList<string> Needed(IReadOnlyList<string> files) =>
        files.Contains(LoraAdapter.ConfigFile) && !files.Contains("config.json") ? HubFiles.Adapter(files) : HubFiles.Model(files);
}
