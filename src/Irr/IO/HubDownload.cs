using System.Net;
using System.Net.Http.Headers;
using System.Security.Cryptography;
using System.Text.Json;

namespace Irr.IO;

/// <summary>
/// A Hub request that failed in a way huggingface_hub falls back to its cache for (<c>_get_metadata_or_catch_error</c>,
/// <c>snapshot_download</c>): no answer (connection refused, DNS, timeout, a broken-off body), or an answer other than
/// RevisionNotFound and EntryNotFound (5xx, 429, a proxy's 404, a missing or gated repo).
/// </summary>
/// <param name="message">What happened: "no answer in time", or for an answer "answered 429 (Too Many Requests) after 6 tries".</param>
/// <param name="answered">Whether the Hub answered with a status (rather than not at all).</param>
/// <param name="retryable">Whether a retry may help: no answer, 408, 429, 5xx (huggingface_hub's <c>_DEFAULT_RETRY_ON_STATUS_CODES</c>).</param>
/// <param name="uncached">The error to raise when the cache does not hold the files either (a missing or gated repo: <c>_raise_on_head_call_error</c>), or null.</param>
internal sealed class HubUnreachableException(string message, bool answered = false, bool retryable = true, IrrException? uncached = null) : Exception(message)
{
    public bool Answered { get; } = answered;

    public bool Retryable { get; } = retryable;

    public IrrException? Uncached { get; } = uncached;
}

/// <summary>A repo at a revision, with the names its messages and URLs use.</summary>
/// <param name="RepoId">"org/name".</param>
/// <param name="Revision">The branch, tag or commit asked for.</param>
/// <param name="RepoType">"model" or "dataset".</param>
/// <param name="Folder">The repo's folder in the cache (<c>models--org--name</c>).</param>
/// <param name="UrlPrefix"><c>{endpoint}/{datasets/}{repo_id}</c>, under which <c>resolve/…</c> lives.</param>
/// <param name="What">"org/name@revision" (escaped), the start of every message.</param>
internal sealed record HubRepo(string RepoId, string Revision, string RepoType, string Folder, string UrlPrefix, string What);

/// <summary>What the revision API says: the commit (<c>sha</c>) and the repo's files (<c>siblings[].rfilename</c>).</summary>
internal sealed record RevisionInfo(string Commit, IReadOnlyList<string> Files);

/// <summary>A file's metadata from <c>HEAD resolve/…</c> (huggingface_hub's <c>HfFileMetadata</c>).</summary>
/// <param name="Commit">The commit the file was resolved at (<c>X-Repo-Commit</c>).</param>
/// <param name="Etag">The blob's name: <c>X-Linked-Etag</c> (an LFS file's SHA-256) or <c>ETag</c>, without quotes and <c>W/</c>.</param>
/// <param name="Size">Bytes: <c>X-Linked-Size</c>, else the answer's <c>Content-Length</c>.</param>
/// <param name="Location">Where the body is: the CDN's URL of a redirect, else the resolve URL.</param>
internal sealed record HubFileMetadata(string Commit, string Etag, long Size, string Location);

public sealed partial class HubClient
{
    private const int MaxRedirects = 10;
    private const int ChunkBytes = 1 << 20;
    private static readonly HttpRequestOptionsKey<int> TriesKey = new("irr.tries");

    // The longest blob name taken from an ETag: a SHA-256 is 64, a git SHA-1 40; blobs/<etag>.incomplete must fit a file name.
    private const int MaxEtagLength = 128;

    private static readonly SocketsHttpHandler SharedHandler = new()
    {
        AllowAutoRedirect = false,
        AutomaticDecompression = DecompressionMethods.None,
        ConnectTimeout = TimeSpan.FromSeconds(10),
        PooledConnectionLifetime = TimeSpan.FromMinutes(5),
    };

    private HttpClient? _http;

    private HttpClient Http => _http ??= new HttpClient(handler ?? SharedHandler, disposeHandler: false) { Timeout = System.Threading.Timeout.InfiniteTimeSpan };

    /// <summary>The user-agent, in huggingface_hub's form (<c>library/version; …</c>).</summary>
    public static string UserAgent { get; } = $"irr/{Jobs.Provenance.Version}; dotnet/{Environment.Version}";

    private HubRepo Repo(string repoId, string revision, string repoType)
    {
        if (HubCache.RepoIdProblem(repoId) is { } problem) throw new IrrException($"'{Diagnostics.Escape(repoId)}': {problem}");
        if (repoType is not ("model" or "dataset")) throw new IrrException($"{repoId}: repo type '{Diagnostics.Escape(repoType)}' is not 'model' or 'dataset'");
        string what = $"{repoId}@{Diagnostics.Escape(revision)}";
        if (revision.Length == 0 || revision.Split('/').Any(p => p is "" or "." or "..") || revision.Contains('\\') || revision.Contains('\0'))
            throw new IrrException($"{what}: not a revision");
        string prefix = $"{Settings.Endpoint}/{(repoType == "dataset" ? "datasets/" : "")}{repoId}";
        return new HubRepo(repoId, revision, repoType, Path.Combine(Settings.Cache, HubCache.RepoFolderName(repoId, repoType)), prefix, what);
    }

    /// <summary>Refuses a repo path that could leave the snapshot (huggingface_hub's <c>_validate_relative_filename</c> and <c>_get_pointer_path</c>).</summary>
    private static void RequireSafePath(HubRepo repo, string path)
    {
        if (path.Length == 0 || path.StartsWith('/') || path.Contains('\\') || path.Contains('\0') || path.Split('/').Any(p => p is "" or "." or ".."))
            throw new IrrException($"{repo.What}: '{Diagnostics.Escape(path)}' is not a safe file name inside the repo");
    }

    private static string Pointer(HubRepo repo, string commit, string path) => Path.Combine(repo.Folder, "snapshots", commit, path);

    /// <summary>
    /// Whether the snapshot file <paramref name="commit"/>/<paramref name="path"/> is there, its link followed as
    /// <c>os.path.exists</c> follows it: a link whose blob is gone is missing (<see cref="System.IO.File.Exists"/> says true for it).
    /// </summary>
    private static bool Present(HubRepo repo, string commit, string path)
    {
        string pointer = Pointer(repo, commit, path);
        if (!System.IO.File.Exists(pointer)) return false;
        try
        {
            return new FileInfo(pointer).LinkTarget is null || System.IO.File.ResolveLinkTarget(pointer, returnFinalTarget: true) is { Exists: true };
        }
        catch (IOException)
        {
            return false; // a loop of links
        }
    }

    /// <summary><c>refs/&lt;revision&gt;</c> ← the commit, atomically, when the revision is a branch or tag and the ref differs (<c>_cache_commit_hash_for_specific_revision</c>).</summary>
    private void WriteRef(HubRepo repo, string commit)
    {
        if (repo.Revision == commit) return;
        string path = Path.Combine(repo.Folder, "refs", repo.Revision);
        if (System.IO.File.Exists(path) && new FileInfo(path).Length == commit.Length && System.IO.File.ReadAllText(path) == commit) return;
        CacheWrite(() =>
        {
            HubCache.RequireWritableInside(repo.Folder, Path.GetDirectoryName(path)!, repo.What);
            AtomicFile.WriteText(path, commit);
        });
    }

    /// <summary>Runs a first write into the cache, its failure (the cache is a regular file, or not writable) one line naming the cache and where it comes from.</summary>
    private void CacheWrite(Action write)
    {
        try
        {
            write();
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new IrrException($"the Hugging Face cache {Diagnostics.Escape(Settings.Cache)} (HF_HUB_CACHE, else HF_HOME/hub) cannot be written: {Diagnostics.Escape(e.Message)}", e);
        }
    }

    /// <summary>GET <c>{endpoint}/api/{models|datasets}/{repo_id}/revision/{quote(revision, safe='')}</c>: the commit and file list, read bounded.</summary>
    private async Task<RevisionInfo> RevisionAsync(HubRepo repo, int retries, CancellationToken token)
    {
        var url = new Uri($"{Settings.Endpoint}/api/{repo.RepoType}s/{repo.RepoId}/revision/{Uri.EscapeDataString(repo.Revision)}");
        using var response = (await SendFollowingAsync(HttpMethod.Get, url, retries, token)).Response;
        if (!response.IsSuccessStatusCode) throw Failure(repo, null, response);
        byte[] body = await ReadBoundedAsync(repo, response, token);
        try
        {
            using var doc = JsonDocument.Parse(body, new JsonDocumentOptions { MaxDepth = 64 });
            return ParseRevision(repo, doc.RootElement);
        }
        catch (JsonException e)
        {
            throw new IrrException($"{repo.What}: the Hub's revision API at {Settings.Endpoint} answered malformed JSON ({e.Message})", e);
        }
    }

    private static RevisionInfo ParseRevision(HubRepo repo, JsonElement root)
    {
        string? sha = root.ValueKind == JsonValueKind.Object && root.TryGetProperty("sha", out var s) && s.ValueKind == JsonValueKind.String ? s.GetString() : null;
        if (sha is null || !HubCache.IsCommit(sha))
            throw new IrrException($"{repo.What}: the Hub's revision API gave no commit hash (sha)");
        var files = new List<string>();
        if (root.TryGetProperty("siblings", out var siblings) && siblings.ValueKind == JsonValueKind.Array)
            foreach (var sibling in siblings.EnumerateArray())
            {
                if (files.Count >= HubCache.MaxSnapshotEntries) throw new IrrException($"{repo.What}: the repo lists more than {HubCache.MaxSnapshotEntries} files");
                if (sibling.ValueKind == JsonValueKind.Object && sibling.TryGetProperty("rfilename", out var name) && name.ValueKind == JsonValueKind.String)
                    files.Add(name.GetString()!);
            }
        return new RevisionInfo(sha, files);
    }

    private async Task<byte[]> ReadBoundedAsync(HubRepo repo, HttpResponseMessage response, CancellationToken token)
    {
        string tooLarge = $"{repo.What}: the Hub's revision API answered more than {MaxRevisionBytes:N0} bytes; refused";
        if (response.Content.Headers.ContentLength > MaxRevisionBytes) throw new IrrException(tooLarge);
        using var timeout = Timeout(token, Settings.MetadataTimeout);
        try
        {
            await using var stream = await response.Content.ReadAsStreamAsync(timeout.Token);
            var buffer = new MemoryStream();
            var chunk = new byte[81920];
            int n;
            while ((n = await stream.ReadAsync(chunk, timeout.Token)) > 0)
            {
                if (buffer.Length + n > MaxRevisionBytes) throw new IrrException(tooLarge);
                buffer.Write(chunk, 0, n);
            }
            return buffer.ToArray();
        }
        catch (Exception e) when (Unreachable(e, token) is { } unreachable)
        {
            throw unreachable;
        }
    }

    /// <summary>
    /// Makes <c>snapshots/&lt;commit&gt;/&lt;path&gt;</c> exist: nothing when it does (and <paramref name="revision"/> is the
    /// commit), else the metadata HEAD, the blob when missing, and the link. Returns the commit.
    /// </summary>
    private async Task<string> EnsureAsync(HubRepo repo, string revision, string path, int retries, CancellationToken token)
    {
        if (HubCache.IsCommit(revision) && Present(repo, revision, path)) return revision;
        var meta = await MetadataAsync(repo, revision, path, retries, token);
        if (HubCache.IsCommit(revision) && meta.Commit != revision)
            throw new IrrException($"{repo.What}: {Diagnostics.Escape(path)}: the Hub answered commit {meta.Commit} for commit {revision}");
        string pointer = Pointer(repo, meta.Commit, path);
        if (Present(repo, meta.Commit, path)) return meta.Commit;
        string blob = Path.Combine(repo.Folder, "blobs", meta.Etag);
        if (!System.IO.File.Exists(blob))
        {
            using var held = await LockAsync(repo, path, meta.Etag, token);
            try
            {
                if (!System.IO.File.Exists(blob)) await DownloadAsync(repo, path, meta, blob, token); // else another download finished it while we waited
            }
            catch (HubUnreachableException e)
            {
                throw Fatal(repo, path, e); // the Hub answered the metadata: a failing body is an error, not a reason to fall back
            }
        }
        HubCache.RequireWritableInside(repo.Folder, Path.GetDirectoryName(pointer)!, repo.What);
        Link(pointer, blob);
        return meta.Commit;
    }

    /// <summary>
    /// Holds <c>{cache}/.locks/{repo folder}/{etag}.lock</c> exclusively, as huggingface_hub does around a blob's download
    /// (<c>_hf_hub_download_to_cache_dir</c>, <c>WeakFileLock</c>): .NET's <see cref="FileShare.None"/> is
    /// <c>flock(LOCK_EX | LOCK_NB)</c> on Unix, the lock Python's <c>filelock</c> takes, so irr and Python processes (and two
    /// clients in one process) exclude each other. While another holds it, waits (as huggingface_hub does, without a time
    /// limit: an flock dies with its process), polling every <see cref="LockPoll"/> and saying so once; a stop ends the wait.
    /// </summary>
    private async Task<FileStream> LockAsync(HubRepo repo, string path, string etag, CancellationToken token)
    {
        string file = Path.Combine(Settings.Cache, ".locks", Path.GetFileName(repo.Folder), etag + ".lock");
        CacheWrite(() => Directory.CreateDirectory(Path.GetDirectoryName(file)!));
        for (bool told = false; ; told = true)
        {
            try
            {
                var held = new FileStream(file, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None, 1, FileOptions.None);
                GroupWritable(held);
                return held;
            }
            catch (IOException e) when (e.HResult is EWouldBlockLinux or EWouldBlockMac)
            {
                if (!told) Diagnostics.Warn($"{repo.What}: {Diagnostics.Escape(path)}: waiting for another download of it (lock {Diagnostics.Escape(file)})");
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                CacheWrite(() => throw e);
            }
            await Task.Delay(LockPoll, token);
        }
    }

    /// <summary>Makes a lock file group-writable (0664), as huggingface_hub's <c>WeakFileLock</c> does (<c>os.fchmod</c>), so users sharing a cache can wait on each other's; best effort.</summary>
    private static void GroupWritable(FileStream held)
    {
        if (OperatingSystem.IsWindows()) return;
        try
        {
            System.IO.File.SetUnixFileMode(held.SafeFileHandle, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead | UnixFileMode.GroupWrite | UnixFileMode.OtherRead);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
        }
    }

    // The errno .NET's IOException carries when flock finds the file locked (EWOULDBLOCK).
    private const int EWouldBlockLinux = 11, EWouldBlockMac = 35;

    /// <summary>
    /// HEAD <c>{prefix}/resolve/{quote(revision, safe='')}/{quote(path)}</c>, following relative redirects on the same host
    /// (a renamed repo) but not the CDN's (<c>_httpx_follow_relative_redirects_with_backoff</c>, <c>get_hf_file_metadata</c>).
    /// </summary>
    private async Task<HubFileMetadata> MetadataAsync(HubRepo repo, string revision, string path, int retries, CancellationToken token)
    {
        var answer = await SendFollowingAsync(HttpMethod.Head, new Uri($"{repo.UrlPrefix}/resolve/{Uri.EscapeDataString(revision)}/{QuotePath(path)}"), retries, token);
        using var response = answer.Response;
        if ((int)response.StatusCode is < 200 or > 399) throw Failure(repo, path, response);
        return Metadata(repo, path, response, answer.Url);
    }

    /// <summary>
    /// A metadata request to the endpoint, following relative redirects on the same host (a renamed or mis-cased repo's 307)
    /// up to <see cref="MaxRedirects"/> but not absolute ones (the CDN's): huggingface_hub's
    /// <c>_httpx_follow_relative_redirects_with_backoff</c>. Returns the last answer (the caller disposes it) and its URL.
    /// </summary>
    private async Task<(HttpResponseMessage Response, Uri Url)> SendFollowingAsync(HttpMethod method, Uri url, int retries, CancellationToken token)
    {
        for (int hop = 0; ; hop++)
        {
            var response = await SendAsync(method, url.AbsoluteUri, auth: true, from: 0, Settings.MetadataTimeout, retries, token);
            if ((int)response.StatusCode is >= 300 and <= 399 && response.Headers.Location is { IsAbsoluteUri: false } location && hop < MaxRedirects)
            {
                response.Dispose();
                url = new Uri(new Uri(url, location).GetLeftPart(UriPartial.Path)); // its path on this host, as huggingface_hub takes it
                continue;
            }
            return (response, url);
        }
    }

    private static HubFileMetadata Metadata(HubRepo repo, string path, HttpResponseMessage response, Uri url)
    {
        string what = $"{repo.What}: {Diagnostics.Escape(path)}";
        string? commit = Header(response, "X-Repo-Commit");
        string? etag = Header(response, "X-Linked-Etag") ?? Header(response, "ETag");
        bool redirect = (int)response.StatusCode is >= 300 and <= 399;
        string? size = Header(response, "X-Linked-Size") ?? (redirect ? null : response.Content.Headers.ContentLength?.ToString(System.Globalization.CultureInfo.InvariantCulture));
        if (commit is null || !HubCache.IsCommit(commit))
            throw new IrrException($"{what}: the server answered without a commit (X-Repo-Commit): not a Hugging Face Hub, or a proxy in the way");
        string blob = NormalizeEtag(etag ?? "");
        if (blob.Length is 0 or > MaxEtagLength || blob is "." or ".." || !blob.All(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '_' or '.'))
            throw new IrrException($"{what}: the server's ETag '{Diagnostics.Escape(etag)}' is missing or not a blob name");
        if (!long.TryParse(size, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out long bytes))
            throw new IrrException($"{what}: the server gave no file size (X-Linked-Size or Content-Length)");
        string location = redirect && response.Headers.Location is { } l ? new Uri(url, l).AbsoluteUri : url.AbsoluteUri;
        return new HubFileMetadata(commit, blob, bytes, location);
    }

    /// <summary>huggingface_hub's <c>_normalize_etag</c>: <c>W/</c> and the quotes removed.</summary>
    internal static string NormalizeEtag(string etag) => (etag.StartsWith("W/", StringComparison.Ordinal) ? etag[2..] : etag).Trim('"');

    private static string? Header(HttpResponseMessage response, string name) =>
        response.Headers.TryGetValues(name, out var values) || response.Content.Headers.TryGetValues(name, out values) ? values.FirstOrDefault() : null;

    /// <summary>Python's <c>quote(path)</c>: each '/'-separated part percent-encoded, '/' kept.</summary>
    private static string QuotePath(string path) => string.Join('/', path.Split('/').Select(Uri.EscapeDataString));

    /// <summary>
    /// Writes the blob: <c>blobs/&lt;etag&gt;.incomplete</c> (locked against a second writer) resumed from its size with
    /// <c>Range: bytes=N-</c> (a 200 instead of 206 starts over), resumed in place when the connection breaks off, refused
    /// when longer than announced, checked against the SHA-256 of an LFS ETag, then renamed to the blob.
    /// </summary>
    private async Task DownloadAsync(HubRepo repo, string path, HubFileMetadata meta, string blob, CancellationToken token)
    {
        string what = $"{repo.What}: {Diagnostics.Escape(path)}";
        HubCache.RequireWritableInside(repo.Folder, Path.GetDirectoryName(blob)!, repo.What);
        TagCache();
        string incomplete = blob + ".incomplete";
        using (var file = OpenIncomplete(what, incomplete))
        {
            using var sha = IsSha256(meta.Etag) ? IncrementalHash.CreateHash(HashAlgorithmName.SHA256) : null;
            if (file.Length > meta.Size) file.SetLength(0);
            try
            {
                await HashPrefixAsync(file, sha, token);
                await ReceiveAllAsync(repo, path, meta, file, sha, token);
            }
            catch (OperationCanceledException) when (token.IsCancellationRequested && file.Length > 0)
            {
                Interruption.Keep(PartialKept);
                throw;
            }
            if (sha is not null && Convert.ToHexStringLower(sha.GetHashAndReset()) is var actual && actual != meta.Etag)
            {
                file.Close();
                System.IO.File.Delete(incomplete);
                throw new IrrException($"{what}: the download's SHA-256 {actual} does not match its LFS ETag {meta.Etag}; refused (deleted)");
            }
            file.Flush(flushToDisk: true);
        }
        try
        {
            System.IO.File.Move(incomplete, blob, overwrite: false);
        }
        catch (IOException) when (System.IO.File.Exists(blob))
        {
            System.IO.File.Delete(incomplete); // another process finished the same blob first
        }
        Observer.Value?.Invoke(new HubDownloadProgress(path, meta.Size, meta.Size, Finished: true));
    }

    /// <summary>What a stop mid-file leaves, for the closing line (<see cref="Interruption.Keep"/>).</summary>
    public const string PartialKept = "a partial download is kept in the Hugging Face cache; run the same command to resume it";

    private static FileStream OpenIncomplete(string what, string incomplete)
    {
        try
        {
            return new FileStream(incomplete, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None, 1, FileOptions.None);
        }
        catch (IOException e)
        {
            throw new IrrException($"{what}: cannot write {Diagnostics.Escape(incomplete)} (another download of it running?): {e.Message}", e);
        }
    }

    private static bool IsSha256(string etag) => etag.Length == 64 && etag.All(char.IsAsciiHexDigitLower);

    /// <summary>Hashes what a resumed <c>.incomplete</c> already holds and leaves the stream at its end.</summary>
    private static async Task HashPrefixAsync(FileStream file, IncrementalHash? sha, CancellationToken token)
    {
        file.Position = 0;
        if (sha is not null)
        {
            var buffer = new byte[ChunkBytes];
            int n;
            while ((n = await file.ReadAsync(buffer, token)) > 0) sha.AppendData(buffer, 0, n);
        }
        file.Position = file.Length;
    }

    /// <summary>Fetches the rest of the body into <paramref name="file"/>, resuming in place up to <see cref="MaxResumeAttempts"/> times after a break (counted afresh when bytes arrive).</summary>
    private async Task ReceiveAllAsync(HubRepo repo, string path, HubFileMetadata meta, FileStream file, IncrementalHash? sha, CancellationToken token)
    {
        int attempts = MaxResumeAttempts;
        Report(path, file.Length, meta.Size);
        while (file.Length < meta.Size)
        {
            long before = file.Length;
            try
            {
                await ReceiveAsync(repo, path, meta, file, sha, token);
            }
            catch (HubUnreachableException e) when (!e.Answered)
            {
                if (file.Length > before) attempts = MaxResumeAttempts;
                if (attempts-- <= 0)
                    throw new IrrException($"{repo.What}: {Diagnostics.Escape(path)}: the download broke off at {file.Length:N0} of {meta.Size:N0} bytes ({e.Message}); run again to resume", e);
                await Task.Delay(RetryDelay, token);
            }
        }
    }

    /// <summary>One GET of the body from the file's current length: appends what arrives, reporting progress per chunk.</summary>
    private async Task ReceiveAsync(HubRepo repo, string path, HubFileMetadata meta, FileStream file, IncrementalHash? sha, CancellationToken token)
    {
        string what = $"{repo.What}: {Diagnostics.Escape(path)}";
        using var response = await GetBodyAsync(repo, path, meta.Location, file.Length, token);
        if (response.StatusCode != HttpStatusCode.PartialContent) Restart(file, sha);
        else if (response.Content.Headers.ContentRange?.From != file.Length)
            throw new IrrException($"{what}: the server answered a range from {response.Content.Headers.ContentRange?.From}, not from byte {file.Length}");
        long? length = response.Content.Headers.ContentLength;
        if (file.Length + length > meta.Size)
            throw Refuse(file, $"{what}: the server sends {file.Length + length:N0} bytes, more than the {meta.Size:N0} announced; refused");
        await using var stream = await response.Content.ReadAsStreamAsync(token);
        var buffer = new byte[ChunkBytes];
        int n;
        while ((n = await ReadChunkAsync(stream, buffer, token)) > 0)
        {
            if (file.Length + n > meta.Size)
                throw Refuse(file, $"{what}: the body is longer than the {meta.Size:N0} bytes announced; refused");
            await file.WriteAsync(buffer.AsMemory(0, n), token);
            sha?.AppendData(buffer, 0, n);
            Report(path, file.Length, meta.Size);
            token.ThrowIfCancellationRequested(); // Interruption.Token is linked in: Ctrl-C stops here, between chunks
        }
        if (file.Length < meta.Size) throw new HubUnreachableException($"the connection closed after {file.Length:N0} of {meta.Size:N0} bytes");
    }

    private static void Restart(FileStream file, IncrementalHash? sha)
    {
        if (file.Length == 0) return;
        file.SetLength(0);
        file.Position = 0;
        sha?.GetHashAndReset();
    }

    private static IrrException Refuse(FileStream file, string message)
    {
        file.SetLength(0);
        return new IrrException(message);
    }

    private async Task<int> ReadChunkAsync(Stream stream, byte[] buffer, CancellationToken token)
    {
        using var stall = Timeout(token, Settings.StallTimeout);
        try
        {
            return await stream.ReadAsync(buffer, stall.Token);
        }
        catch (Exception e) when (Unreachable(e, token) is { } unreachable)
        {
            throw unreachable;
        }
    }

    /// <summary>
    /// GET the body from <paramref name="from"/>, following redirects (the CDN's), over http or https only; the token is sent
    /// only to the endpoint's origin (its scheme, host and port: not over a downgrade to http, as requests' <c>should_strip_auth</c>).
    /// </summary>
    private async Task<HttpResponseMessage> GetBodyAsync(HubRepo repo, string path, string location, long from, CancellationToken token)
    {
        var url = new Uri(location);
        for (int hop = 0; ; hop++)
        {
            if (url.Scheme != Uri.UriSchemeHttp && url.Scheme != Uri.UriSchemeHttps)
                throw new IrrException($"{repo.What}: {Diagnostics.Escape(path)}: the Hub sent the download to '{Diagnostics.Escape(url.Scheme)}:', not http or https; refused");
            var response = await SendAsync(HttpMethod.Get, url.AbsoluteUri, auth: SameHost(url), from, Settings.StallTimeout, MaxRetries, token);
            int status = (int)response.StatusCode;
            if (status is >= 300 and <= 399 && response.Headers.Location is { } next && hop < MaxRedirects)
            {
                response.Dispose();
                url = new Uri(url, next);
                continue;
            }
            if (status is >= 200 and <= 299) return response;
            using (response) throw Failure(repo, path, response);
        }
    }

    private bool SameHost(Uri url) => Uri.TryCreate(Settings.Endpoint, UriKind.Absolute, out var endpoint)
        && endpoint.Scheme == url.Scheme && endpoint.Authority == url.Authority;

    /// <summary>
    /// One request, retried up to <paramref name="retries"/> times when not answered or answered 408, 429 or 5xx, after
    /// <see cref="Backoff"/> (huggingface_hub's <c>http_backoff</c>). The last answer is returned with its number of tries
    /// (read by <see cref="Failure"/>); the last failure to answer is thrown.
    /// </summary>
    private async Task<HttpResponseMessage> SendAsync(HttpMethod method, string url, bool auth, long from, TimeSpan timeout, int retries, CancellationToken token)
    {
        for (int tries = 1; ; tries++)
        {
            HttpResponseMessage response;
            try
            {
                response = await SendOnceAsync(method, url, auth, from, timeout, token);
            }
            catch (HubUnreachableException) when (tries <= retries)
            {
                await Task.Delay(Backoff(tries, null), token);
                continue;
            }
            catch (HubUnreachableException e) when (tries > 1)
            {
                throw new HubUnreachableException($"{e.Message}; {tries} tries");
            }
            if (!IsRetryable((int)response.StatusCode) || tries > retries)
            {
                response.RequestMessage?.Options.Set(TriesKey, tries);
                return response;
            }
            var wait = Backoff(tries, response);
            response.Dispose();
            await Task.Delay(wait, token);
        }
    }

    /// <summary>huggingface_hub's <c>_DEFAULT_RETRY_ON_STATUS_CODES</c> (408, 429, 500, 502, 503, 504), here every 5xx.</summary>
    private static bool IsRetryable(int status) => status is 408 or 429 or >= 500;

    /// <summary>
    /// The wait before retry <paramref name="tries"/>: the answer's <c>Retry-After</c> seconds, at most 60 × <see cref="RetryDelay"/>,
    /// else <see cref="RetryDelay"/> doubled per retry up to 8 × it (huggingface_hub: 1 s, 2 s, 4 s, 8 s, 8 s).
    /// </summary>
    private TimeSpan Backoff(int tries, HttpResponseMessage? response)
    {
        if (response?.Headers.RetryAfter?.Delta is { } after) return after < RetryDelay * 60 ? after : RetryDelay * 60;
        return RetryDelay * Math.Min(1 << Math.Min(tries - 1, 3), 8);
    }

    private async Task<HttpResponseMessage> SendOnceAsync(HttpMethod method, string url, bool auth, long from, TimeSpan timeout, CancellationToken token)
    {
        var request = new HttpRequestMessage(method, url);
        request.Headers.TryAddWithoutValidation("user-agent", UserAgent);
        request.Headers.TryAddWithoutValidation("Accept-Encoding", "identity");
        if (auth && Settings.Token is { } bearer) request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", bearer);
        if (from > 0) request.Headers.Range = new RangeHeaderValue(from, null);
        using var limit = Timeout(token, timeout);
        try
        {
            return await Http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, limit.Token);
        }
        catch (Exception e) when (Unreachable(e, token) is { } unreachable)
        {
            throw unreachable;
        }
    }

    private static CancellationTokenSource Timeout(CancellationToken token, TimeSpan after)
    {
        var source = CancellationTokenSource.CreateLinkedTokenSource(token);
        source.CancelAfter(after);
        return source;
    }

    /// <summary>A network failure or a timeout (not the caller's stop) as <see cref="HubUnreachableException"/>; null for anything else.</summary>
    private static HubUnreachableException? Unreachable(Exception e, CancellationToken token) => e switch
    {
        HubUnreachableException u => u,
        OperationCanceledException when !token.IsCancellationRequested => new HubUnreachableException("no answer in time"),
        HttpRequestException or IOException when !token.IsCancellationRequested => new HubUnreachableException(Diagnostics.Escape(Innermost(e).Message)),
        _ => null,
    };

    private static Exception Innermost(Exception e) => e.InnerException is { } inner ? Innermost(inner) : e;

    private static void Report(string path, long done, long total) => Observer.Value?.Invoke(new HubDownloadProgress(path, done, total));

    /// <summary>The cache directory's <c>CACHEDIR.TAG</c>, as huggingface_hub writes it (best effort).</summary>
    private void TagCache()
    {
        string tag = Path.Combine(Settings.Cache, "CACHEDIR.TAG");
        if (System.IO.File.Exists(tag)) return;
        try
        {
            System.IO.File.WriteAllText(tag, "Signature: 8a477f597d28d172789f06886806bc55\n# This file is a cache directory tag created by huggingface_hub.\n# For information about cache directory tags, see:\n#\thttps://bford.info/cachedir/\n");
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
        }
    }

    /// <summary>
    /// The snapshot link <paramref name="pointer"/> → <paramref name="blob"/>, relative (<c>../../blobs/&lt;etag&gt;</c>, one
    /// more <c>../</c> per folder), created under a temporary name and renamed over, so it is never half made (<c>_create_symlink</c>).
    /// </summary>
    private static void Link(string pointer, string blob)
    {
        string folder = Path.GetDirectoryName(Path.GetFullPath(pointer))!;
        Directory.CreateDirectory(folder);
        string target = Path.GetRelativePath(folder, Path.GetFullPath(blob));
        string temporary = Temporaries.NameFor(Path.GetFullPath(pointer));
        Temporaries.Register(temporary, pointer);
        bool done = false;
        try
        {
            System.IO.File.CreateSymbolicLink(temporary, target);
            System.IO.File.Move(temporary, pointer, overwrite: true);
            done = true;
        }
        finally
        {
            if (done) Temporaries.Unregister(temporary, committed: true);
            else Temporaries.Abandon(temporary);
        }
    }

    private IrrException NoRepo(HubRepo repo) =>
        new($"{repo.What}: no {repo.RepoType} repo {repo.RepoId} on {Settings.Endpoint}{(Settings.Token is null ? " (if it is private, set HF_TOKEN)" : "")}");

    /// <summary>
    /// The error of a failed answer (huggingface_hub's <c>hf_raise_for_status</c>, by <c>X-Error-Code</c>): RevisionNotFound and
    /// EntryNotFound are one-line errors; anything else is a <see cref="HubUnreachableException"/> (the cache is used when it
    /// holds the files, as <c>_get_metadata_or_catch_error</c> and <c>snapshot_download</c> do), retryable for 408, 429 and 5xx,
    /// carrying the one-line error to give when the cache does not hold them.
    /// </summary>
    private Exception Failure(HubRepo repo, string? path, HttpResponseMessage response)
    {
        int status = (int)response.StatusCode;
        int tries = response.RequestMessage?.Options.TryGetValue(TriesKey, out int n) == true ? n : 1;
        string answer = $"answered {status} ({Diagnostics.Escape(response.ReasonPhrase)}){(tries > 1 ? $" after {tries} tries" : "")}";
        if (IsRetryable(status)) return new HubUnreachableException(answer, answered: true);
        var error = Refusal(repo, path, response);
        string? code = Header(response, "X-Error-Code");
        return code is "RevisionNotFound" or "EntryNotFound" ? error : new HubUnreachableException(answer, answered: true, retryable: false, uncached: error);
    }

    /// <summary>The one-line error of a refusing answer, by status and <c>X-Error-Code</c>.</summary>
    private IrrException Refusal(HubRepo repo, string? path, HttpResponseMessage response)
    {
        int status = (int)response.StatusCode;
        string? code = Header(response, "X-Error-Code");
        string what = path is null ? repo.What : $"{repo.What}: {Diagnostics.Escape(path)}";
        string page = $"{Settings.Endpoint}/{(repo.RepoType == "dataset" ? "datasets/" : "")}{repo.RepoId}";
        string sent = Settings.Token is null ? "" : " (a token was sent; it has no access to this repo)";
        string access = $"accept its licence on {page} and set HF_TOKEN (or run `hf auth login`){sent}";
        return (status, code) switch
        {
            (_, "GatedRepo") => new IrrException($"{what}: gated or private ({status}, gated repo); {access}"),
            (401, _) => new IrrException($"{what}: not found, or gated or private (401); {access}"),
            (403, _) => new IrrException($"{what}: gated or private (403); {access}"),
            (404, "RevisionNotFound") => new IrrException($"{what}: no revision {Diagnostics.Escape(repo.Revision)} in the {repo.RepoType} repo {repo.RepoId} on {Settings.Endpoint}"),
            (404, "EntryNotFound") => new IrrException($"{what}: no such file in the repo"),
            (404, "RepoNotFound") => NoRepo(repo),
            (404, _) when path is null => NoRepo(repo),
            (404, _) => new IrrException($"{what}: not found on {Settings.Endpoint} (404)"),
            _ => new IrrException($"{what}: the Hub at {Settings.Endpoint} answered {status} {Diagnostics.Escape(response.ReasonPhrase)}"),
        };
    }
}
