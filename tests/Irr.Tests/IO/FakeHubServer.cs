using System.Collections.Concurrent;
using System.Net;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json.Nodes;

namespace Irr.Tests.IO;

/// <summary>
/// A Hugging Face Hub on 127.0.0.1 (HttpListener on a free port, as <see cref="Eval.FakeJudgeServer"/>) serving in-memory
/// model and dataset repos with branches and commits, as the Hub answers (huggingface_hub's file_download.py and
/// hf_api.py read these; https://huggingface.co/docs/hub/api):
/// <list type="bullet">
/// <item><c>GET /api/{models|datasets}/{org}/{name}/revision/{rev}</c> → <c>{"id", "sha", "siblings": [{"rfilename"}]}</c>;</item>
/// <item><c>HEAD|GET /{datasets/}{org}/{name}/resolve/{rev}/{path}</c> → a regular file's body (200, <c>ETag</c> = its git blob
/// SHA-1, <c>Content-Length</c>, <c>Accept-Ranges</c>, 206 for a Range), or for an LFS file a 302 to <c>/cdn/{sha256}</c> on
/// another host name (<see cref="CdnUrl"/>) with
/// <c>X-Linked-Etag</c> (the SHA-256) and <c>X-Linked-Size</c>; always <c>X-Repo-Commit</c>;</item>
/// <item>a renamed repo answers a relative 307 to its new name, on the revision API and on resolve (huggingface_hub#981;
/// the Hub answers a mis-cased ID so too);</item>
/// <item>errors with <c>X-Error-Code</c>: 404 RepoNotFound, RevisionNotFound, EntryNotFound; a gated repo 401 without a token
/// and 403 with a token not in <see cref="Repo.Tokens"/> (GatedRepo).</item>
/// </list>
/// Switches: <see cref="DropAfter"/> breaks a file's body off once, <see cref="WrongBody"/> serves other bytes for an LFS
/// file, <see cref="IgnoreRange"/> answers 200 to a Range, <see cref="FailFiles"/> and <see cref="FailCdn"/> answer a file request with an error status
/// (429 with <c>Retry-After: 0</c>), <see cref="WriteDelay"/> slows a body down. Every request is logged (<see cref="Log"/>).
/// </summary>
internal sealed class FakeHubServer : IDisposable
{
    /// <summary>One request as the server saw it.</summary>
    public sealed record Request(string Method, string Path, string? Range, string? Authorization, string? UserAgent);

    /// <summary>A repo: commits (path → bytes), branches and tags, access.</summary>
    public sealed class Repo(string id, string type)
    {
        public string Id { get; } = id;

        public string Type { get; } = type;

        public Dictionary<string, Dictionary<string, byte[]>> Commits { get; } = new(StringComparer.Ordinal);

        public Dictionary<string, string> Refs { get; } = new(StringComparer.Ordinal);

        /// <summary>Gated: 401 without a token, 403 with a token not listed here.</summary>
        public bool Gated { get; set; }

        public HashSet<string> Tokens { get; } = new(StringComparer.Ordinal);

        /// <summary>Adds a commit of <paramref name="files"/> (its hash derived from them unless given) and points <paramref name="branch"/> at it.</summary>
        public string Commit(IReadOnlyDictionary<string, byte[]> files, string? branch = "main", string? commit = null)
        {
            commit ??= Convert.ToHexStringLower(SHA1.HashData(Encoding.UTF8.GetBytes(Id + string.Concat(files.OrderBy(f => f.Key, StringComparer.Ordinal).Select(f => f.Key + ":" + GitBlobSha1(f.Value) + ";")) + Commits.Count)));
            Commits[commit] = files.ToDictionary(f => f.Key, f => f.Value, StringComparer.Ordinal);
            if (branch is not null) Refs[branch] = commit;
            return commit;
        }
    }

    private readonly Irr.Tests.Eval.LoopbackHttpServer _server;
    private readonly ConcurrentDictionary<string, Repo> _repos = new(StringComparer.Ordinal);

    public FakeHubServer()
    {
        // The CDN's host is "localhost": another host name, so no token goes there.
        _server = new Irr.Tests.Eval.LoopbackHttpServer(Handle, "127.0.0.1", "localhost");
        Url = $"http://127.0.0.1:{_server.Port}";
        CdnUrl = $"http://localhost:{_server.Port}";
    }

    /// <summary>The server's base URL (HF_ENDPOINT), e.g. http://127.0.0.1:41234.</summary>
    public string Url { get; } = "";

    /// <summary>The CDN's base URL: the same server under another host name (http://localhost:41234).</summary>
    public string CdnUrl { get; } = "";

    public ConcurrentQueue<Request> Log { get; } = new();

    /// <summary>Renamed repos: old ID → new ID (answered with a relative 307, as the Hub does).</summary>
    public ConcurrentDictionary<string, string> Renamed { get; } = new(StringComparer.Ordinal);

    /// <summary>A file path whose next body (GET) breaks off after this many bytes; cleared once used.</summary>
    public (string Path, int Bytes)? DropAfter { get; set; }

    /// <summary>Serves these LFS files (by path) with other bytes of the same length.</summary>
    public HashSet<string> WrongBody { get; } = new(StringComparer.Ordinal);

    /// <summary>Answers 200 with the whole body to a Range request.</summary>
    public bool IgnoreRange { get; set; }

    /// <summary>Bytes the CDN sends beyond an LFS file's X-Linked-Size.</summary>
    public int ExtraBytes { get; set; }

    /// <summary>Characters of padding added to the revision API's answer (to exceed the client's bound).</summary>
    public int RevisionPadding { get; set; }

    /// <summary>A status every resolve request answers with (500: the Hub is down), or null.</summary>
    public int? ResolveStatus { get; set; }

    /// <summary>Statuses the next resolve requests are answered with, one each, without X-Error-Code (429 with Retry-After: 0).</summary>
    public ConcurrentQueue<int> FailFiles { get; } = new();

    /// <summary>Statuses the next CDN requests are answered with, one each.</summary>
    public ConcurrentQueue<int> FailCdn { get; } = new();

    /// <summary>A pause after each write of a body (a slow download).</summary>
    public TimeSpan WriteDelay { get; set; }

    /// <summary>Bytes per write of a body (the client sees it arrive in pieces).</summary>
    public int WriteBytes { get; set; } = 64 << 10;

    /// <summary>Which files are stored in LFS (served through the CDN with X-Linked-Etag): weights and parquet, as on the Hub.</summary>
    public static bool IsLfs(string path) =>
        path.EndsWith(".safetensors", StringComparison.Ordinal) || path.EndsWith(".bin", StringComparison.Ordinal) || path.EndsWith(".parquet", StringComparison.Ordinal);

    public Repo Add(string id, string type = "model") => _repos[type + "/" + id] = new Repo(id, type);

    /// <summary>The requests whose path starts with <paramref name="prefix"/> ("/api/", "/cdn/", "/org/name/resolve/").</summary>
    public IReadOnlyList<Request> Requests(string prefix = "/") => Log.Where(r => r.Path.StartsWith(prefix, StringComparison.Ordinal)).ToList();

    /// <summary>git's blob id: SHA-1 of "blob {length}\0" + content (the Hub's ETag of a regular file).</summary>
    public static string GitBlobSha1(byte[] content) =>
        Convert.ToHexStringLower(SHA1.HashData([.. Encoding.ASCII.GetBytes($"blob {content.Length}\0"), .. content]));

    public static string Sha256(byte[] content) => Convert.ToHexStringLower(SHA256.HashData(content));

    private async Task Handle(HttpListenerContext context)
    {
        var request = context.Request;
        string raw = request.RawUrl!.Split('?')[0];
        Log.Enqueue(new Request(request.HttpMethod, raw, request.Headers["Range"], request.Headers["Authorization"], request.Headers["User-Agent"]));
        try
        {
            var parts = raw.Trim('/').Split('/').Select(Uri.UnescapeDataString).ToArray();
            if (parts is ["api", var types, var org, var name, "revision", var rev]) await RevisionApi(context, types, org + "/" + name, rev);
            else if (parts is [_, _, "resolve", ..] or ["datasets", _, _, "resolve", ..] && FailFiles.TryDequeue(out int failure)) await Fail(context, failure);
            else if (parts is ["cdn", ..] && FailCdn.TryDequeue(out int cdnFailure)) await Fail(context, cdnFailure);
            else if (parts is ["cdn", var sha]) await Cdn(context, sha);
            else if (parts is ["datasets", var dorg, var dname, "resolve", var drev, ..]) await Resolve(context, "dataset", dorg + "/" + dname, drev, string.Join('/', parts[5..]), "/datasets");
            else if (parts is [var morg, var mname, "resolve", var mrev, ..]) await Resolve(context, "model", morg + "/" + mname, mrev, string.Join('/', parts[4..]), "");
            else await Error(context, 404, null);
        }
        catch (Exception)
        {
            try { context.Response.Abort(); } catch (Exception) { }
        }
    }

    /// <summary>The repo and commit, or an error answer already sent (RepoNotFound, GatedRepo, RevisionNotFound).</summary>
    private async Task<(Repo, string)?> Find(HttpListenerContext context, string type, string id, string revision)
    {
        if (!_repos.TryGetValue(type + "/" + id, out var repo))
        {
            await Error(context, 404, "RepoNotFound");
            return null;
        }
        string? auth = context.Request.Headers["Authorization"];
        if (repo.Gated && !(auth is not null && auth.StartsWith("Bearer ", StringComparison.Ordinal) && repo.Tokens.Contains(auth[7..])))
        {
            await Error(context, auth is null ? 401 : 403, "GatedRepo");
            return null;
        }
        string? commit = repo.Commits.ContainsKey(revision) ? revision : repo.Refs.GetValueOrDefault(revision);
        if (commit is null)
        {
            await Error(context, 404, "RevisionNotFound");
            return null;
        }
        return (repo, commit);
    }

    private async Task RevisionApi(HttpListenerContext context, string types, string id, string revision)
    {
        if (Renamed.TryGetValue(id, out string? renamed))
        {
            context.Response.StatusCode = 307;
            context.Response.Headers["Location"] = $"/api/{types}/{renamed}/revision/{Uri.EscapeDataString(revision)}";
            context.Response.Close();
            return;
        }
        if (await Find(context, types.TrimEnd('s'), id, revision) is not var (repo, commit)) return;
        var siblings = new JsonArray(repo.Commits[commit].Keys.Order(StringComparer.Ordinal).Select(p => (JsonNode)new JsonObject { ["rfilename"] = p }).ToArray());
        var body = new JsonObject { ["_id"] = "0123", ["id"] = repo.Id, ["private"] = false, ["gated"] = repo.Gated ? "auto" : false, ["sha"] = commit, ["siblings"] = siblings };
        if (RevisionPadding > 0) body["padding"] = new string('x', RevisionPadding);
        await Send(context, 200, Encoding.UTF8.GetBytes(body.ToJsonString()), "application/json");
    }

    private async Task Resolve(HttpListenerContext context, string type, string id, string revision, string path, string typePrefix)
    {
        if (Renamed.TryGetValue(id, out string? renamed))
        {
            context.Response.StatusCode = 307;
            context.Response.Headers["Location"] = $"{typePrefix}/{renamed}/resolve/{Uri.EscapeDataString(revision)}/{string.Join('/', path.Split('/').Select(Uri.EscapeDataString))}";
            context.Response.Close();
            return;
        }
        if (ResolveStatus is { } status)
        {
            await Error(context, status, null);
            return;
        }
        if (await Find(context, type, id, revision) is not var (repo, commit)) return;
        context.Response.Headers["X-Repo-Commit"] = commit;
        if (!repo.Commits[commit].TryGetValue(path, out var content))
        {
            await Error(context, 404, "EntryNotFound");
            return;
        }
        if (IsLfs(path))
        {
            string sha = Sha256(content);
            context.Response.StatusCode = 302;
            context.Response.Headers["ETag"] = $"\"{GitBlobSha1(Encoding.ASCII.GetBytes("pointer " + sha))}\"";
            context.Response.Headers["X-Linked-Etag"] = $"\"{sha}\"";
            context.Response.Headers["X-Linked-Size"] = content.Length.ToString(System.Globalization.CultureInfo.InvariantCulture);
            context.Response.Headers["Location"] = $"{CdnUrl}/cdn/{sha}?path={Uri.EscapeDataString(path)}&sig=x";
            context.Response.ContentLength64 = 0;
            context.Response.Close();
            return;
        }
        context.Response.Headers["ETag"] = $"\"{GitBlobSha1(content)}\"";
        await Body(context, path, content);
    }

    private async Task Cdn(HttpListenerContext context, string sha)
    {
        string path = Uri.UnescapeDataString(context.Request.QueryString["path"] ?? "");
        var content = _repos.Values.SelectMany(r => r.Commits.Values).SelectMany(c => c).FirstOrDefault(f => Sha256(f.Value) == sha);
        if (content.Value is null)
        {
            await Error(context, 404, null);
            return;
        }
        byte[] bytes = content.Value;
        if (WrongBody.Contains(path)) bytes = bytes.Select(b => (byte)(b ^ 0x5a)).ToArray();
        if (ExtraBytes > 0) bytes = [.. bytes, .. new byte[ExtraBytes]];
        await Body(context, path, bytes);
    }

    /// <summary>The body, whole (200) or from a Range's start (206), written in <see cref="WriteBytes"/> pieces; broken off once when <see cref="DropAfter"/> says so.</summary>
    private async Task Body(HttpListenerContext context, string path, byte[] content)
    {
        var response = context.Response;
        response.Headers["Accept-Ranges"] = "bytes";
        long from = 0;
        if (context.Request.Headers["Range"] is { } range && !IgnoreRange && range.StartsWith("bytes=", StringComparison.Ordinal) && range.EndsWith('-'))
        {
            from = long.Parse(range[6..^1], System.Globalization.CultureInfo.InvariantCulture);
            response.StatusCode = 206;
            response.Headers["Content-Range"] = $"bytes {from}-{content.Length - 1}/{content.Length}";
        }
        response.ContentType = "application/octet-stream";
        response.ContentLength64 = content.Length - from;
        if (context.Request.HttpMethod == "HEAD")
        {
            response.Close();
            return;
        }
        int? drop = null;
        if (DropAfter is { } d && d.Path == path)
        {
            drop = d.Bytes;
            DropAfter = null;
        }
        long end = drop is { } n ? Math.Min(content.Length, from + n) : content.Length;
        for (long at = from; at < end; at += WriteBytes)
        {
            await response.OutputStream.WriteAsync(content.AsMemory((int)at, (int)Math.Min(WriteBytes, end - at)));
            await response.OutputStream.FlushAsync();
            if (WriteDelay > TimeSpan.Zero) await Task.Delay(WriteDelay);
        }
        if (drop is not null && end < content.Length)
        {
            await Task.Delay(50); // let the bytes leave before the connection is cut
            response.Abort();
            return;
        }
        response.Close();
    }

    private static async Task Send(HttpListenerContext context, int status, byte[] body, string type)
    {
        context.Response.StatusCode = status;
        context.Response.ContentType = type;
        context.Response.ContentLength64 = body.Length;
        if (context.Request.HttpMethod != "HEAD") await context.Response.OutputStream.WriteAsync(body);
        context.Response.Close();
    }

    private static Task Fail(HttpListenerContext context, int status)
    {
        if (status == 429) context.Response.Headers["Retry-After"] = "0";
        return Error(context, status, null);
    }

    private static Task Error(HttpListenerContext context, int status, string? code)
    {
        if (code is not null) context.Response.Headers["X-Error-Code"] = code;
        context.Response.Headers["X-Error-Message"] = code ?? "Not found";
        return Send(context, status, Encoding.UTF8.GetBytes($"{{\"error\":\"{code ?? "Not found"}\"}}"), "application/json");
    }

    public void Dispose() => _server.Dispose();
}
