namespace Irr.IO;

/// <summary>Where and how irr talks to the Hugging Face Hub (<c>huggingface_hub.constants</c>).</summary>
/// <param name="Endpoint">The Hub's base URL, no trailing '/': <c>HF_ENDPOINT</c>, default <c>https://huggingface.co</c>.</param>
/// <param name="Token">The access token: <c>HF_TOKEN</c>, else the file <c>HF_HOME/token</c> (or <c>HF_TOKEN_PATH</c>), else null.</param>
/// <param name="Cache">The cache directory (<see cref="HubCache.Directory"/>).</param>
/// <param name="Offline">Whether <c>HF_HUB_OFFLINE</c> is set: nothing is requested, only the cache is read.</param>
public sealed record HubSettings(string Endpoint, string? Token, string Cache, bool Offline)
{
    /// <summary>The endpoint, checked: an absolute http(s) URL with a host, no trailing '/'.</summary>
    /// <exception cref="IrrException">Not an http(s) URL: "HF_ENDPOINT 'ftp://x': not an http(s) URL".</exception>
    public string Endpoint { get; init; } = CheckEndpoint(Endpoint);

    /// <summary>huggingface_hub's default endpoint.</summary>
    public const string DefaultEndpoint = "https://huggingface.co";

    /// <summary>The largest token file read (a token is 37 characters).</summary>
    public const int MaxTokenFileBytes = 4096;

    /// <summary>How long a metadata request (the revision API, a file's HEAD) may take: <c>HF_HUB_ETAG_TIMEOUT</c> seconds, default 10.</summary>
    public TimeSpan MetadataTimeout { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>How long a download may wait for its next bytes: <c>HF_HUB_DOWNLOAD_TIMEOUT</c> seconds, default 10.</summary>
    public TimeSpan StallTimeout { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>The settings the environment gives (the cache as <see cref="HubCache.Directory"/> gives it, override included).</summary>
    /// <exception cref="IrrException">The token file exists but cannot be read or is too large.</exception>
    public static HubSettings FromEnvironment() =>
        FromEnvironment(Environment.GetEnvironmentVariable) with { Cache = HubCache.Directory };

    /// <summary>The settings the environment <paramref name="variable"/> reads gives, as huggingface_hub reads them.</summary>
    /// <exception cref="IrrException">The token file exists but cannot be read or is too large; <c>HF_ENDPOINT</c> is not an
    /// http(s) URL; <c>HF_HUB_ETAG_TIMEOUT</c> or <c>HF_HUB_DOWNLOAD_TIMEOUT</c> is not a positive number of seconds.</exception>
    public static HubSettings FromEnvironment(Func<string, string?> variable)
    {
        string endpoint = (variable("HF_ENDPOINT") is { Length: > 0 } e ? e : DefaultEndpoint).TrimEnd('/');
        return new HubSettings(endpoint, TokenFromEnvironment(variable), HubCache.FromEnvironment(variable), HubCache.OfflineIn(variable))
        {
            MetadataTimeout = Seconds(variable, "HF_HUB_ETAG_TIMEOUT", 10),
            StallTimeout = Seconds(variable, "HF_HUB_DOWNLOAD_TIMEOUT", 10),
        };
    }

    /// <summary>
    /// The token as <c>huggingface_hub.utils.get_token</c> finds it: <c>HF_TOKEN</c> (else the legacy
    /// <c>HUGGING_FACE_HUB_TOKEN</c>), else the file <c>HF_TOKEN_PATH</c> (default <c>HF_HOME/token</c>, as
    /// <see cref="HubCache.Home"/>); line breaks removed and stripped; empty is none.
    /// </summary>
    /// <exception cref="IrrException">The token file exists but cannot be read or is larger than <see cref="MaxTokenFileBytes"/>.</exception>
    public static string? TokenFromEnvironment(Func<string, string?> variable)
    {
        if ((Clean(variable("HF_TOKEN")) ?? Clean(variable("HUGGING_FACE_HUB_TOKEN"))) is { } token) return token;
        string path = HubCache.ExpandUser(variable("HF_TOKEN_PATH") is { Length: > 0 } p ? p : Path.Combine(HubCache.Home(variable), "token"));
        if (!File.Exists(path)) return null;
        var bytes = BoundedText.ReadBytes(path, MaxTokenFileBytes,
            _ => new IrrException($"{Diagnostics.Escape(path)}: larger than {MaxTokenFileBytes} bytes; not a Hugging Face token file (HF_TOKEN_PATH)"),
            e => new IrrException($"{Diagnostics.Escape(path)}: cannot read the Hugging Face token: {e.Message}", e));
        return Clean(System.Text.Encoding.UTF8.GetString(bytes));
    }

    // huggingface_hub's _clean_token: line breaks removed, stripped, empty is none.
    private static string? Clean(string? token) => token?.Replace("\r", "").Replace("\n", "").Trim() is { Length: > 0 } t ? t : null;

    /// <summary>The longest timeout accepted, in seconds (a week).</summary>
    public const double MaxTimeoutSeconds = 7 * 24 * 3600;

    /// <summary><paramref name="endpoint"/> without trailing '/', refused unless an absolute http(s) URL with a host and no query (huggingface_hub would fail on its first request).</summary>
    /// <exception cref="IrrException">"HF_ENDPOINT 'ftp://x': not an http(s) URL".</exception>
    public static string CheckEndpoint(string endpoint)
    {
        string trimmed = endpoint.TrimEnd('/');
        if (trimmed.Any(char.IsWhiteSpace) || !Uri.TryCreate(trimmed, UriKind.Absolute, out var uri) || uri.Scheme is not ("http" or "https")
            || uri.Host.Length == 0 || uri.Query.Length > 0 || uri.Fragment.Length > 0)
            throw new IrrException($"HF_ENDPOINT '{Diagnostics.Escape(endpoint)}': not an http(s) URL");
        return trimmed;
    }

    // A timeout variable in seconds (huggingface_hub's _as_int, here any positive number); unset or empty is the default.
    private static TimeSpan Seconds(Func<string, string?> variable, string name, double fallback)
    {
        string? text = variable(name);
        if (string.IsNullOrWhiteSpace(text)) return TimeSpan.FromSeconds(fallback);
        if (!double.TryParse(text.Trim(), System.Globalization.NumberStyles.Float, System.Globalization.CultureInfo.InvariantCulture, out double seconds)
            || !(seconds > 0) || seconds > MaxTimeoutSeconds)
            throw new IrrException($"{name} '{Diagnostics.Escape(text)}': not a positive number of seconds (at most {MaxTimeoutSeconds:0})");
        return TimeSpan.FromSeconds(seconds);
    }
}

/// <summary>One file's download progress, for a progress bar per file.</summary>
/// <param name="File">The file's path in the repo.</param>
/// <param name="Done">Bytes on disk so far (a resumed download starts at its .incomplete's size).</param>
/// <param name="Total">The file's size in bytes (<c>X-Linked-Size</c> or <c>Content-Length</c>), 0 when unknown.</param>
/// <param name="Finished">Reported once per file, after its blob is verified (LFS SHA-256) and in place; <paramref name="Done"/> then equals <paramref name="Total"/>.</param>
public readonly record struct HubDownloadProgress(string File, long Done, long Total, bool Finished = false);

/// <summary>
/// Downloads repo files into the Hub cache as <c>huggingface_hub</c> does (<c>file_download.py</c>,
/// <c>_snapshot_download.py</c>), so Python tools share it: the revision API gives the commit and the file list,
/// <c>HEAD resolve/&lt;commit&gt;/&lt;file&gt;</c> the blob's ETag (<c>X-Linked-Etag</c> for LFS files: their SHA-256),
/// size and CDN location; the body is written to <c>blobs/&lt;etag&gt;.incomplete</c> (resumed with a Range request),
/// checked against the LFS SHA-256, renamed to <c>blobs/&lt;etag&gt;</c>, and linked from
/// <c>snapshots/&lt;commit&gt;/&lt;file&gt;</c> by a relative symlink created under a temporary name and renamed;
/// <c>refs/&lt;revision&gt;</c> is written atomically. Offline (<c>HF_HUB_OFFLINE</c>), or for a commit whose files are
/// all cached, nothing is requested; when the Hub cannot be reached (connection refused, DNS, timeout, 5xx) a cached
/// revision is used with a warning, as huggingface_hub does; 401, 403 and 404 are errors. A stop
/// (<see cref="Interruption"/>, or the token passed) ends a download between chunks, leaving only the resumable
/// <c>.incomplete</c>.
/// </summary>
/// <param name="settings">Endpoint, token, cache and offline switch.</param>
/// <param name="handler">The HTTP handler (tests); it must not follow redirects. Default: a shared <see cref="SocketsHttpHandler"/>.</param>
public sealed partial class HubClient(HubSettings settings, HttpMessageHandler? handler = null)
{
    /// <summary>The largest revision API answer read (a repo's metadata and file list).</summary>
    public const int MaxRevisionBytes = 16 << 20;

    /// <summary>How many times a download that breaks off is resumed in place before giving up (huggingface_hub's <c>http_get</c>: 5), counted afresh once bytes arrive.</summary>
    public const int MaxResumeAttempts = 5;

    /// <summary>The settings.</summary>
    public HubSettings Settings { get; } = settings;

    /// <summary>How many times a request answered 408, 429 or 5xx, or not answered at all, is retried (huggingface_hub's <c>http_backoff</c>: 5).</summary>
    public const int MaxRetries = 5;

    /// <summary>
    /// The pause before resuming a download that broke off (huggingface_hub waits 1 s), and the first of the retries'
    /// backoff: doubled per retry up to 8 times it; a <c>Retry-After</c> is honoured up to 60 times it.
    /// </summary>
    public TimeSpan RetryDelay { get; init; } = TimeSpan.FromSeconds(1);

    /// <summary>How often a download waiting for another's lock on the same blob checks it again.</summary>
    public TimeSpan LockPoll { get; init; } = TimeSpan.FromMilliseconds(200);

    private static readonly AsyncLocal<HubClient?> OverrideClient = new();
    private static readonly AsyncLocal<Action<HubDownloadProgress>?> Observer = new();

    /// <summary>The client of this async flow: <see cref="Override"/>'s, else one from the environment.</summary>
    /// <exception cref="IrrException">The token file cannot be read (<see cref="HubSettings.TokenFromEnvironment"/>).</exception>
    public static HubClient Current => OverrideClient.Value ?? new HubClient(HubSettings.FromEnvironment());

    /// <summary>Uses <paramref name="client"/> as <see cref="Current"/> in this async flow (tests); dispose to restore.</summary>
    public static IDisposable Override(HubClient client)
    {
        var previous = OverrideClient.Value;
        OverrideClient.Value = client;
        return new Restore(() => OverrideClient.Value = previous);
    }

    /// <summary>Where this async flow's downloads report progress (the command line draws a bar per file); dispose to restore.</summary>
    public static IDisposable Observe(Action<HubDownloadProgress> observer)
    {
        var previous = Observer.Value;
        Observer.Value = observer;
        return new Restore(() => Observer.Value = previous);
    }

    private sealed class Restore(Action action) : IDisposable
    {
        public void Dispose() => action();
    }

    /// <summary>
    /// The snapshot directory of <paramref name="repoId"/> at <paramref name="revision"/> with the files
    /// <paramref name="select"/> picks from the repo's file list, downloading those not yet in the cache for that commit.
    /// Offline, or for a commit whose picked files are all cached, nothing is requested (<paramref name="select"/> then
    /// picks from the snapshot's files). The shards a picked shard index lists (<see cref="HubFiles.IsShardIndex"/>) are
    /// fetched with it, after it.
    /// </summary>
    /// <param name="repoId">"org/name".</param>
    /// <param name="revision">A branch, tag or 40-hex commit.</param>
    /// <param name="repoType">"model" or "dataset".</param>
    /// <param name="select">Picks repo paths from a file list (<see cref="HubFiles.Model"/>, <see cref="HubFiles.Adapter"/>).</param>
    /// <param name="cancellation">Stops the download (besides <see cref="Interruption.Token"/>, which always does).</param>
    /// <exception cref="IrrException">One line naming the repo, revision and file: not found, gated or private, offline and not cached, a refused download.</exception>
    /// <exception cref="OperationCanceledException">A stop was requested; only <c>.incomplete</c> files are left.</exception>
    public (string Snapshot, string Commit) Snapshot(string repoId, string revision, string repoType,
        Func<IReadOnlyList<string>, IReadOnlyList<string>> select, CancellationToken cancellation = default) =>
        Run(cancellation, token => SnapshotAsync(Repo(repoId, revision, repoType), select, token));

    /// <summary>One file of a repo (a data set's parquet, say): its path in the snapshot, downloaded when missing (<c>hf_hub_download</c>).</summary>
    /// <exception cref="IrrException">As <see cref="Snapshot"/>.</exception>
    /// <exception cref="OperationCanceledException">A stop was requested.</exception>
    public (string Path, string Commit) File(string repoId, string revision, string repoType, string path, CancellationToken cancellation = default) =>
        Run(cancellation, token => FileAsync(Repo(repoId, revision, repoType), path, token));

    private static T Run<T>(CancellationToken cancellation, Func<CancellationToken, Task<T>> work)
    {
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(cancellation, Interruption.Token);
        return Task.Run(() => work(linked.Token)).GetAwaiter().GetResult(); // off any synchronization context; AsyncLocals flow in
    }

    private async Task<(string, string)> SnapshotAsync(HubRepo repo, Func<IReadOnlyList<string>, IReadOnlyList<string>> select, CancellationToken token)
    {
        if (Settings.Offline) return FromCache(repo, select, null);
        if (HubCache.IsCommit(repo.Revision) && CachedComplete(repo, repo.Revision, select)) return Resolved(repo, repo.Revision);
        var online = await OnlineAsync(retries => RevisionAsync(repo, retries, token), () => Cached(repo, select));
        if (online.Failure is { } failure) return FromCache(repo, select, failure);
        var info = online.Value!;
        WriteRef(repo, info.Commit);
        var wanted = Known(repo, select(info.Files), info.Files, "the repo");
        foreach (string path in wanted.Where(HubFiles.IsShardIndex)) await FetchAsync(repo, info.Commit, path, token);
        var shards = wanted.Where(HubFiles.IsShardIndex).SelectMany(index => HubFiles.ShardsOf(Pointer(repo, info.Commit, index), index));
        foreach (string path in Known(repo, shards.ToList(), info.Files, "the shard index"))
            await FetchAsync(repo, info.Commit, path, token);
        foreach (string path in wanted.Where(p => !HubFiles.IsShardIndex(p))) await FetchAsync(repo, info.Commit, path, token);
        return Resolved(repo, info.Commit);
    }

    /// <summary>One file of a snapshot whose commit the Hub gave: a Hub that stops answering now is an error, not a reason to fall back.</summary>
    private async Task FetchAsync(HubRepo repo, string commit, string path, CancellationToken token)
    {
        try
        {
            await EnsureAsync(repo, commit, path, MaxRetries, token);
        }
        catch (HubUnreachableException e)
        {
            throw Fatal(repo, path, e);
        }
    }

    /// <summary>The one-line error of a Hub that failed with no cache to fall back to: the answer's own error (not found, gated), else what went wrong.</summary>
    private IrrException Fatal(HubRepo repo, string path, HubUnreachableException e) =>
        e.Uncached ?? new IrrException($"{repo.What}: {Diagnostics.Escape(path)}: {Trouble(e)}", e);

    /// <summary>"cannot reach the Hub at X (no answer in time)", or for an answer "the Hub at X answered 429 (Too Many Requests) after 6 tries".</summary>
    private string Trouble(HubUnreachableException e) =>
        e.Answered ? $"the Hub at {Settings.Endpoint} {e.Message}" : $"cannot reach the Hub at {Settings.Endpoint} ({e.Message})";

    /// <summary>
    /// huggingface_hub's order for a metadata call (<c>_hf_hub_download_to_cache_dir</c>): one try without retries; when it
    /// fails, the cache if it holds the files (<paramref name="cached"/>), else, when a retry may help (no connection, a
    /// timeout, 408, 429, 5xx), the call again with <see cref="MaxRetries"/> retries and backoff. The failure is returned
    /// for <see cref="FromCache"/>.
    /// </summary>
    private static async Task<(T? Value, HubUnreachableException? Failure)> OnlineAsync<T>(Func<int, Task<T>> call, Func<bool> cached)
    {
        try
        {
            return (await call(0), null);
        }
        catch (HubUnreachableException e) when (!e.Retryable || cached())
        {
            return (default, e);
        }
        catch (HubUnreachableException)
        {
        }
        try
        {
            return (await call(MaxRetries), null);
        }
        catch (HubUnreachableException e)
        {
            return (default, e);
        }
    }

    /// <summary>Whether the cache holds the revision with every file <paramref name="select"/> picks.</summary>
    private bool Cached(HubRepo repo, Func<IReadOnlyList<string>, IReadOnlyList<string>> select)
    {
        try
        {
            var found = HubCache.Resolve(repo.RepoId, repo.Revision, Settings.Cache, repo.RepoType);
            return Missing(repo, found.Commit, select) is null;
        }
        catch (IrrException)
        {
            return false;
        }
    }

    private async Task<(string, string)> FileAsync(HubRepo repo, string path, CancellationToken token)
    {
        RequireSafePath(repo, path);
        if (Settings.Offline) return InSnapshot(FromCache(repo, _ => [path], null), path);
        if (HubCache.IsCommit(repo.Revision) && Present(repo, repo.Revision, path))
            return InSnapshot(Resolved(repo, repo.Revision), path);
        var online = await OnlineAsync(retries => EnsureAsync(repo, repo.Revision, path, retries, token), () => Cached(repo, _ => [path]));
        if (online.Failure is { } failure) return InSnapshot(FromCache(repo, _ => [path], failure), path);
        string commit = online.Value!;
        WriteRef(repo, commit);
        return InSnapshot(Resolved(repo, commit), path);
    }

    private static (string, string) InSnapshot((string Snapshot, string Commit) found, string path) =>
        (Path.Combine(found.Snapshot, path), found.Commit);

    /// <summary>The snapshot of <paramref name="commit"/>, checked by <see cref="HubCache.Resolve"/> (no link leaves the repo folder).</summary>
    private (string, string) Resolved(HubRepo repo, string commit) => HubCache.Resolve(repo.RepoId, commit, Settings.Cache, repo.RepoType);

    /// <summary>
    /// The cached snapshot of the revision with every file <paramref name="select"/> picks from its files (and the shards
    /// of a picked index) present: offline, or after <paramref name="unreachable"/> (with a warning).
    /// </summary>
    private (string, string) FromCache(HubRepo repo, Func<IReadOnlyList<string>, IReadOnlyList<string>> select, HubUnreachableException? unreachable)
    {
        (string Snapshot, string Commit) found;
        try
        {
            found = HubCache.Resolve(repo.RepoId, repo.Revision, Settings.Cache, repo.RepoType);
        }
        catch (IrrException e) when (unreachable is not null)
        {
            throw unreachable.Uncached ?? new IrrException($"{repo.What}: {Trouble(unreachable)}, and the Hugging Face cache at {Diagnostics.Escape(Settings.Cache)} does not hold it", e);
        }
        var missing = Missing(repo, found.Commit, select);
        string why = unreachable is null ? "HF_HUB_OFFLINE is set"
            : unreachable.Answered ? $"the Hub at {Settings.Endpoint} {unreachable.Message}"
            : $"the Hub at {Settings.Endpoint} cannot be reached: {unreachable.Message}";
        if (missing is not null)
            throw unreachable?.Uncached ?? new IrrException($"{repo.What}: {Diagnostics.Escape(missing)} is not in the Hugging Face cache at {Diagnostics.Escape(Settings.Cache)} (commit {found.Commit}; {why})");
        if (unreachable is not null) Diagnostics.Warn($"{repo.What}: {why}; using commit {found.Commit} from the Hugging Face cache");
        return found;
    }

    private bool CachedComplete(HubRepo repo, string commit, Func<IReadOnlyList<string>, IReadOnlyList<string>> select) =>
        Directory.Exists(Path.Combine(repo.Folder, "snapshots", commit)) && Missing(repo, commit, select) is null;

    /// <summary>The first file <paramref name="select"/> picks from the cached snapshot's files (or a picked index lists) that is not there, or null.</summary>
    private string? Missing(HubRepo repo, string commit, Func<IReadOnlyList<string>, IReadOnlyList<string>> select)
    {
        var wanted = select(SnapshotFiles(Path.Combine(repo.Folder, "snapshots", commit)));
        foreach (string path in wanted)
        {
            RequireSafePath(repo, path);
            if (!Present(repo, commit, path)) return path;
        }
        foreach (string index in wanted.Where(HubFiles.IsShardIndex))
            foreach (string shard in HubFiles.ShardsOf(Pointer(repo, commit, index), index))
                if (!Present(repo, commit, shard)) return shard;
        return null;
    }

    /// <summary>The files (and file links) under a snapshot directory, as repo paths with '/', at most <see cref="HubCache.MaxSnapshotEntries"/>.</summary>
    private static IReadOnlyList<string> SnapshotFiles(string snapshot)
    {
        var files = new List<string>();
        var options = new EnumerationOptions { RecurseSubdirectories = true, AttributesToSkip = 0 };
        foreach (string file in Directory.EnumerateFiles(snapshot, "*", options))
        {
            if (files.Count >= HubCache.MaxSnapshotEntries) break;
            files.Add(Path.GetRelativePath(snapshot, file).Replace(Path.DirectorySeparatorChar, '/'));
        }
        return files;
    }

    /// <summary><paramref name="picked"/>, each checked to be a safe path that <paramref name="files"/> holds.</summary>
    private static IReadOnlyList<string> Known(HubRepo repo, IReadOnlyList<string> picked, IReadOnlyList<string> files, string source)
    {
        var present = new HashSet<string>(files, StringComparer.Ordinal);
        foreach (string path in picked)
        {
            RequireSafePath(repo, path);
            if (!present.Contains(path))
                throw new IrrException($"{repo.What}: the repo has no {Diagnostics.Escape(path)}{(source == "the repo" ? "" : $" (listed by {source})")}");
        }
        return picked.Distinct(StringComparer.Ordinal).ToList();
    }
}
