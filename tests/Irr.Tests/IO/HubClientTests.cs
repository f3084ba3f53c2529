using System.Text;
using System.Text.Json.Nodes;
using Irr.IO;

namespace Irr.Tests.IO;

/// <summary>
/// <see cref="HubClient"/> against <see cref="FakeHubServer"/>: the cache it writes is checked against the layout
/// huggingface_hub documents ("Understand caching": <c>refs/&lt;branch&gt;</c> holds the commit, <c>blobs/&lt;etag&gt;</c> named by
/// the LFS SHA-256 or the git blob SHA-1, computed here from the bytes, <c>snapshots/&lt;commit&gt;/&lt;file&gt;</c> relative
/// links), and the requests it makes against what huggingface_hub makes (none offline or for a cached commit).
/// </summary>
public class HubClientTests
{
    private const string Shard1 = "model-00001-of-00002.safetensors";
    private const string Shard2 = "model-00002-of-00002.safetensors";

    /// <summary>A Mistral-like repo: a sharded model with its index, a consolidated.safetensors beside it, and original/.</summary>
    private static Dictionary<string, byte[]> ModelRepo(int seed = 1)
    {
        var random = new Random(seed);
        byte[] Bytes(int n)
        {
            var b = new byte[n];
            random.NextBytes(b);
            return b;
        }
        string index = $"{{\"metadata\": {{\"total_size\": 3}}, \"weight_map\": {{\"a\": \"{Shard1}\", \"b\": \"{Shard2}\", \"c\": \"{Shard1}\"}}}}";
        return new Dictionary<string, byte[]>
        {
            ["config.json"] = Encoding.UTF8.GetBytes("{\"model_type\": \"llama\"}"),
            ["tokenizer.json"] = Encoding.UTF8.GetBytes("{\"version\": \"1.0\"}"),
            ["README.md"] = Encoding.UTF8.GetBytes("---\nlicense: apache-2.0\n---\n# m\n"),
            ["model.safetensors.index.json"] = Encoding.UTF8.GetBytes(index),
            [Shard1] = Bytes(300_000),
            [Shard2] = Bytes(120_000),
            ["consolidated.safetensors"] = Bytes(50_000),
            ["original/params.json"] = Encoding.UTF8.GetBytes("{\"dim\": 8}"),
        };
    }

    private static readonly string[] Picked = ["config.json", "tokenizer.json", "README.md", "model.safetensors.index.json", Shard1, Shard2];

    private static HubClient Client(FakeHubServer hub, string cache, string? token = null, bool offline = false) =>
        new(new HubSettings(hub.Url, token, cache, offline)) { RetryDelay = TimeSpan.Zero };

    /// <summary>The blob name huggingface_hub gives a file: the SHA-256 of an LFS file, else git's blob SHA-1.</summary>
    private static string Etag(string path, byte[] content) =>
        FakeHubServer.IsLfs(path) ? Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(content)) : FakeHubServer.GitBlobSha1(content);

    private static void AssertLayout(string cache, string folder, string commit, IReadOnlyDictionary<string, byte[]> files, IEnumerable<string> expected)
    {
        string repo = Path.Combine(cache, folder);
        foreach (string path in expected)
        {
            string link = Path.Combine(repo, "snapshots", commit, path);
            string up = string.Concat(Enumerable.Repeat("../", path.Count(c => c == '/') + 2));
            Assert.Equal(up + "blobs/" + Etag(path, files[path]), new FileInfo(link).LinkTarget);
            Assert.Equal(files[path], File.ReadAllBytes(link));
        }
        var blobs = Directory.GetFiles(Path.Combine(repo, "blobs")).Select(f => Path.GetFileName(f)).Order().ToList();
        Assert.Equal(expected.Select(p => Etag(p, files[p])).Distinct().Order().ToList(), blobs);
        Assert.Empty(Directory.GetFiles(repo, "*.incomplete", SearchOption.AllDirectories));
        Assert.Empty(Directory.GetFiles(repo, "*irr-tmp*", SearchOption.AllDirectories));
    }

    [Fact]
    public void ASnapshotIsWrittenInHuggingFaceHubsLayoutWithOnlyTheFilesAModelNeeds()
    {
        using var dir = new TempDir();
        using var hub = new FakeHubServer();
        var files = ModelRepo();
        string commit = hub.Add("org/name").Commit(files);

        var (snapshot, got) = Client(hub, dir["hub"]).Snapshot("org/name", "main", "model", HubFiles.Model);

        Assert.Equal((Path.Combine(dir["hub"], "models--org--name", "snapshots", commit), commit), (snapshot, got));
        Assert.Equal(commit, File.ReadAllText(Path.Combine(dir["hub"], "models--org--name", "refs", "main")));
        AssertLayout(dir["hub"], "models--org--name", commit, files, Picked);
        Assert.False(File.Exists(Path.Combine(snapshot, "consolidated.safetensors")));
        Assert.False(Directory.Exists(Path.Combine(snapshot, "original")));
        Assert.StartsWith("Signature: 8a477f597d28d172789f06886806bc55\n", File.ReadAllText(dir["hub/CACHEDIR.TAG"]));
        Assert.All(hub.Log, r => Assert.StartsWith("irr/", r.UserAgent));
        Assert.All(hub.Log, r => Assert.Null(r.Authorization));
        Assert.Equal(commit, HubCache.Resolve("org/name", "main", dir["hub"]).Commit); // the reader agrees
    }

    [Fact]
    public void ACachedRevisionMakesNoFileRequestAndACachedCommitOrOfflineNoneAtAll()
    {
        using var dir = new TempDir();
        using var hub = new FakeHubServer();
        string commit = hub.Add("org/name").Commit(ModelRepo());
        Client(hub, dir["hub"]).Snapshot("org/name", "main", "model", HubFiles.Model);

        hub.Log.Clear();
        Assert.Equal(commit, Client(hub, dir["hub"]).Snapshot("org/name", "main", "model", HubFiles.Model).Commit);
        Assert.Equal(["/api/models/org/name/revision/main"], hub.Log.Select(r => r.Path));

        hub.Log.Clear();
        Assert.Equal(commit, Client(hub, dir["hub"]).Snapshot("org/name", commit, "model", HubFiles.Model).Commit);
        Assert.Equal(commit, Client(hub, dir["hub"]).File("org/name", commit, "model", "config.json").Commit);
        Assert.Equal(commit, Client(hub, dir["hub"], offline: true).Snapshot("org/name", "main", "model", HubFiles.Model).Commit);
        var (path, _) = Client(hub, dir["hub"], offline: true).File("org/name", "main", "model", "tokenizer.json");
        Assert.Equal("{\"version\": \"1.0\"}", File.ReadAllText(path));
        Assert.Empty(hub.Log);
    }

    [Fact]
    public void OfflineAndNotCachedIsTheCachesOneLineError()
    {
        using var dir = new TempDir();
        using var hub = new FakeHubServer();
        string commit = hub.Add("org/name").Commit(ModelRepo());
        var offline = Client(hub, dir["hub"], offline: true);
        Assert.StartsWith("org/name@main: no such local directory, and the model repo org/name is not in the Hugging Face cache",
            Assert.Throws<IrrException>(() => offline.Snapshot("org/name", "main", "model", HubFiles.Model)).Message);

        Client(hub, dir["hub"]).File("org/name", "main", "model", "config.json"); // a partial snapshot
        var error = Assert.Throws<IrrException>(() => offline.Snapshot("org/name", "main", "model", HubFiles.Model)).Message;
        Assert.Equal($"org/name@main: model.safetensors is not in the Hugging Face cache at {dir["hub"]} (commit {commit}; HF_HUB_OFFLINE is set)", error);
        Assert.DoesNotContain(hub.Log, r => r.Path.Contains("model.safetensors"));
    }

    [Fact]
    public void APinnedCommitWithAMissingFileIsCompletedOnline()
    {
        using var dir = new TempDir();
        using var hub = new FakeHubServer();
        var files = ModelRepo();
        string commit = hub.Add("org/name").Commit(files);
        Client(hub, dir["hub"]).File("org/name", commit, "model", "config.json");
        Client(hub, dir["hub"]).Snapshot("org/name", commit, "model", HubFiles.Model);
        AssertLayout(dir["hub"], "models--org--name", commit, files, Picked);
        Assert.False(File.Exists(Path.Combine(dir["hub"], "models--org--name", "refs", commit)));
        Assert.False(Directory.Exists(Path.Combine(dir["hub"], "models--org--name", "refs")));
    }

    [Fact]
    public void ALinkWhoseBlobIsGoneIsMissingAsOsPathExistsSaysAndIsFetchedAgain()
    {
        // huggingface_hub checks a snapshot file with os.path.exists, which follows the link: a link left dangling (its blob
        // deleted to free space) is a missing file, downloaded again online and named offline, never returned.
        using var dir = new TempDir();
        using var hub = new FakeHubServer();
        var files = ModelRepo();
        string commit = hub.Add("org/name").Commit(files);
        var (snapshot, _) = Client(hub, dir["hub"]).Snapshot("org/name", "main", "model", HubFiles.Model);
        string tokenizer = Path.Combine(dir["hub"], "models--org--name", "blobs", Etag("tokenizer.json", files["tokenizer.json"]));
        string shard = Path.Combine(dir["hub"], "models--org--name", "blobs", Etag(Shard2, files[Shard2]));
        File.Delete(tokenizer);
        File.Delete(shard);

        var error = Assert.Throws<IrrException>(() => Client(hub, dir["hub"], offline: true).Snapshot("org/name", "main", "model", HubFiles.Model)).Message;
        Assert.Equal($"org/name@main: tokenizer.json is not in the Hugging Face cache at {dir["hub"]} (commit {commit}; HF_HUB_OFFLINE is set)", error);
        Assert.Throws<IrrException>(() => Client(hub, dir["hub"], offline: true).File("org/name", commit, "model", Shard2));

        var (path, _) = Client(hub, dir["hub"]).File("org/name", commit, "model", "tokenizer.json");
        Assert.Equal(files["tokenizer.json"], File.ReadAllBytes(path));
        Client(hub, dir["hub"]).Snapshot("org/name", commit, "model", HubFiles.Model);
        AssertLayout(dir["hub"], "models--org--name", commit, files, Picked);
        Assert.Equal(files[Shard2], File.ReadAllBytes(Path.Combine(snapshot, Shard2)));
    }

    [Fact]
    public void NestedFilesDataSetsAndBlobsSharedBetweenCommits()
    {
        using var dir = new TempDir();
        using var hub = new FakeHubServer();
        var files = ModelRepo();
        var repo = hub.Add("org/name");
        string first = repo.Commit(files);
        var (nested, _) = Client(hub, dir["hub"]).File("org/name", "main", "model", "original/params.json");
        Assert.Equal("../../../blobs/" + FakeHubServer.GitBlobSha1(files["original/params.json"]), new FileInfo(nested).LinkTarget);

        byte[] parquet = Encoding.ASCII.GetBytes("PAR1 fake parquet PAR1");
        string data = hub.Add("org/data", "dataset").Commit(new Dictionary<string, byte[]> { ["data/test-00000-of-00001.parquet"] = parquet }, "refs/convert/parquet");
        var (file, commit) = Client(hub, dir["hub"]).File("org/data", "refs/convert/parquet", "dataset", "data/test-00000-of-00001.parquet");
        Assert.Equal((Path.Combine(dir["hub"], "datasets--org--data", "snapshots", data, "data", "test-00000-of-00001.parquet"), data), (file, commit));
        Assert.Equal("../../../blobs/" + FakeHubServer.Sha256(parquet), new FileInfo(file).LinkTarget);
        Assert.Equal(data, File.ReadAllText(Path.Combine(dir["hub"], "datasets--org--data", "refs", "refs", "convert", "parquet")));
        Assert.Contains(hub.Log, r => r.Path == "/datasets/org/data/resolve/refs%2Fconvert%2Fparquet/data/test-00000-of-00001.parquet");

        Client(hub, dir["hub"]).Snapshot("org/name", "main", "model", HubFiles.Model);
        var changed = new Dictionary<string, byte[]>(files) { ["config.json"] = Encoding.UTF8.GetBytes("{\"model_type\": \"mistral\"}") };
        string second = repo.Commit(changed);
        hub.Log.Clear();
        Client(hub, dir["hub"]).Snapshot("org/name", "main", "model", HubFiles.Model);
        Assert.Empty(hub.Requests("/cdn/")); // the shards' blobs are reused
        Assert.Equal(new FileInfo(Path.Combine(dir["hub"], "models--org--name", "snapshots", first, Shard1)).LinkTarget,
            new FileInfo(Path.Combine(dir["hub"], "models--org--name", "snapshots", second, Shard1)).LinkTarget);
        Assert.Equal(second, File.ReadAllText(Path.Combine(dir["hub"], "models--org--name", "refs", "main")));
    }

    [Fact]
    public void ADroppedConnectionIsResumedWithARangeRequest()
    {
        using var dir = new TempDir();
        using var hub = new FakeHubServer();
        var files = ModelRepo();
        string commit = hub.Add("org/name").Commit(files);
        hub.DropAfter = (Shard1, 100_000);
        Client(hub, dir["hub"]).Snapshot("org/name", "main", "model", HubFiles.Model);
        var gets = hub.Requests("/cdn/" + FakeHubServer.Sha256(files[Shard1]));
        Assert.Equal(2, gets.Count);
        Assert.Null(gets[0].Range);
        Assert.Matches("^bytes=[1-9][0-9]*-$", gets[1].Range);
        AssertLayout(dir["hub"], "models--org--name", commit, files, Picked);
    }

    [Fact]
    public void AnIncompleteFileFromAnEarlierRunIsResumedAndA200InsteadOf206StartsOver()
    {
        using var dir = new TempDir();
        using var hub = new FakeHubServer();
        var files = ModelRepo();
        string commit = hub.Add("org/name").Commit(files);
        string blobs = Path.Combine(dir["hub"], "models--org--name", "blobs");
        Directory.CreateDirectory(blobs);
        string sha1 = FakeHubServer.Sha256(files[Shard1]), sha2 = FakeHubServer.Sha256(files[Shard2]);
        File.WriteAllBytes(Path.Combine(blobs, sha1 + ".incomplete"), files[Shard1][..1000]);
        Client(hub, dir["hub"]).Snapshot("org/name", "main", "model", HubFiles.Model);
        Assert.Equal("bytes=1000-", Assert.Single(hub.Requests("/cdn/" + sha1)).Range);

        File.Delete(Path.Combine(blobs, sha2));
        File.Delete(Path.Combine(dir["hub"], "models--org--name", "snapshots", commit, Shard2));
        File.WriteAllBytes(Path.Combine(blobs, sha2 + ".incomplete"), new byte[777]); // not the file's start
        hub.IgnoreRange = true;
        Client(hub, dir["hub"]).Snapshot("org/name", "main", "model", HubFiles.Model);
        Assert.Equal("bytes=777-", hub.Requests("/cdn/" + sha2)[^1].Range); // answered 200: the garbage is replaced
        AssertLayout(dir["hub"], "models--org--name", commit, files, Picked);
    }

    [Fact]
    public void ABodyThatDoesNotMatchItsLfsEtagIsRefusedAndLeavesNoBlobOrLink()
    {
        using var dir = new TempDir();
        using var hub = new FakeHubServer();
        var files = ModelRepo();
        string commit = hub.Add("org/name").Commit(files);
        hub.WrongBody.Add(Shard1);
        string sha = FakeHubServer.Sha256(files[Shard1]);
        var error = Assert.Throws<IrrException>(() => Client(hub, dir["hub"]).Snapshot("org/name", "main", "model", HubFiles.Model)).Message;
        Assert.StartsWith($"org/name@main: {Shard1}: the download's SHA-256 ", error);
        Assert.EndsWith($" does not match its LFS ETag {sha}; refused (deleted)", error);
        Assert.DoesNotContain('\n', error);
        string repo = Path.Combine(dir["hub"], "models--org--name");
        Assert.False(File.Exists(Path.Combine(repo, "blobs", sha)));
        Assert.False(File.Exists(Path.Combine(repo, "blobs", sha + ".incomplete")));
        Assert.False(Path.Exists(Path.Combine(repo, "snapshots", commit, Shard1)));
    }

    [Fact]
    public void AStopMidFileLeavesOnlyTheIncompleteWhichTheNextRunResumes()
    {
        using var dir = new TempDir();
        using var hub = new FakeHubServer();
        var files = ModelRepo();
        files[Shard1] = new byte[3 << 20];
        new Random(7).NextBytes(files[Shard1]);
        string commit = hub.Add("org/name").Commit(files);
        string sha = FakeHubServer.Sha256(files[Shard1]);
        using var stop = new CancellationTokenSource();
        var seen = new List<HubDownloadProgress>();
        using (HubClient.Observe(p => { seen.Add(p); if (p.File == Shard1 && p.Done > 0) stop.Cancel(); }))
            Assert.ThrowsAny<OperationCanceledException>(() => Client(hub, dir["hub"]).Snapshot("org/name", "main", "model", HubFiles.Model, stop.Token));
        string repo = Path.Combine(dir["hub"], "models--org--name");
        long kept = new FileInfo(Path.Combine(repo, "blobs", sha + ".incomplete")).Length;
        Assert.InRange(kept, 1, files[Shard1].Length - 1);
        Assert.False(File.Exists(Path.Combine(repo, "blobs", sha)));
        Assert.False(Path.Exists(Path.Combine(repo, "snapshots", commit, Shard1)));
        Assert.Empty(Directory.GetFiles(repo, "*irr-tmp*", SearchOption.AllDirectories));

        seen.Clear();
        using (HubClient.Observe(seen.Add)) Client(hub, dir["hub"]).Snapshot("org/name", "main", "model", HubFiles.Model);
        Assert.Equal($"bytes={kept}-", hub.Requests("/cdn/" + sha)[^1].Range);
        Assert.Equal(new HubDownloadProgress(Shard1, kept, 3 << 20), seen.First(p => p.File == Shard1));
        Assert.Equal(new HubDownloadProgress(Shard1, 3 << 20, 3 << 20, Finished: true), seen.Last(p => p.File == Shard1));
        Assert.Single(seen, p => p.File == Shard1 && p.Finished);
        AssertLayout(dir["hub"], "models--org--name", commit, files, Picked);
    }

    [Fact]
    public void GatedPrivateAndMissingReposRevisionsAndFilesAreOneLineEach()
    {
        using var dir = new TempDir();
        using var hub = new FakeHubServer();
        var gated = hub.Add("org/gated");
        gated.Commit(ModelRepo());
        gated.Gated = true;
        gated.Tokens.Add("hf_good");
        hub.Add("org/name").Commit(new Dictionary<string, byte[]> { ["tokenizer.json"] = [1] });
        string Error(Action act) => Assert.Throws<IrrException>(act).Message;
        string access = $"accept its licence on {hub.Url}/org/gated and set HF_TOKEN (or run `hf auth login`)";

        Assert.Equal($"org/gated@main: gated or private (401, gated repo); {access}",
            Error(() => Client(hub, dir["hub"]).Snapshot("org/gated", "main", "model", HubFiles.Model)));
        Assert.Equal($"org/gated@main: config.json: gated or private (403, gated repo); {access} (a token was sent; it has no access to this repo)",
            Error(() => Client(hub, dir["hub"], "hf_bad").File("org/gated", "main", "model", "config.json")));
        Assert.Equal($"org/missing@main: no model repo org/missing on {hub.Url} (if it is private, set HF_TOKEN)",
            Error(() => Client(hub, dir["hub"]).Snapshot("org/missing", "main", "model", HubFiles.Model)));
        Assert.Equal($"org/name@dev: no revision dev in the model repo org/name on {hub.Url}",
            Error(() => Client(hub, dir["hub"]).Snapshot("org/name", "dev", "model", HubFiles.Model)));
        Assert.Equal("org/name@main: nope.json: no such file in the repo",
            Error(() => Client(hub, dir["hub"]).File("org/name", "main", "model", "nope.json")));
        Assert.Equal("org/name@main: the repo has no config.json",
            Error(() => Client(hub, dir["hub"]).Snapshot("org/name", "main", "model", HubFiles.Model)));
        Assert.Equal("org/name@main: '../x' is not a safe file name inside the repo",
            Error(() => Client(hub, dir["hub"]).File("org/name", "main", "model", "../x")));

        hub.Log.Clear();
        Client(hub, dir["hub"], "hf_good").Snapshot("org/gated", "main", "model", HubFiles.Model);
        Assert.All(hub.Requests("/api/").Concat(hub.Requests("/org/")), r => Assert.Equal("Bearer hf_good", r.Authorization));
        Assert.NotEmpty(hub.Requests("/cdn/"));
        Assert.All(hub.Requests("/cdn/"), r => Assert.Null(r.Authorization)); // a signed CDN URL on another host gets no token
    }

    [Fact]
    public void WithoutTheHubACachedRevisionIsUsedWithAWarning()
    {
        using var dir = new TempDir();
        using var hub = new FakeHubServer();
        string commit = hub.Add("org/name").Commit(ModelRepo());
        Client(hub, dir["hub"]).Snapshot("org/name", "main", "model", HubFiles.Model);
        string down = $"http://127.0.0.1:{Irr.Eval.EngineServer.FreePort()}";
        var client = new HubClient(new HubSettings(down, null, dir["hub"], false)) { RetryDelay = TimeSpan.Zero };
        var warnings = new List<string>();
        using (Diagnostics.Listen(warnings.Add))
            Assert.Equal(commit, client.Snapshot("org/name", "main", "model", HubFiles.Model).Commit);
        Assert.StartsWith($"org/name@main: the Hub at {down} cannot be reached: ", Assert.Single(warnings));
        Assert.EndsWith($"; using commit {commit} from the Hugging Face cache", warnings[0]);
        Assert.StartsWith($"org/other@main: cannot reach the Hub at {down} (",
            Assert.Throws<IrrException>(() => client.Snapshot("org/other", "main", "model", HubFiles.Model)).Message);
    }

    [Fact]
    public void AnswersBeyondTheirBoundsAreRefused()
    {
        using var dir = new TempDir();
        using var hub = new FakeHubServer();
        var files = ModelRepo();
        string commit = hub.Add("org/name").Commit(files);
        hub.RevisionPadding = HubClient.MaxRevisionBytes;
        Assert.Equal($"org/name@main: the Hub's revision API answered more than {HubClient.MaxRevisionBytes:N0} bytes; refused",
            Assert.Throws<IrrException>(() => Client(hub, dir["hub"]).Snapshot("org/name", "main", "model", HubFiles.Model)).Message);

        hub.RevisionPadding = 0;
        hub.ExtraBytes = 10;
        Assert.Equal($"org/name@main: {Shard1}: the server sends 300,010 bytes, more than the 300,000 announced; refused",
            Assert.Throws<IrrException>(() => Client(hub, dir["hub"]).Snapshot("org/name", "main", "model", HubFiles.Model)).Message);
        Assert.False(File.Exists(Path.Combine(dir["hub"], "models--org--name", "blobs", FakeHubServer.Sha256(files[Shard1]))));
        Assert.False(Path.Exists(Path.Combine(dir["hub"], "models--org--name", "snapshots", commit, Shard1)));

        hub.ResolveStatus = 500; // the revision API answers, the files do not: no fallback for a commit not cached
        hub.Log.Clear();
        Assert.Equal($"org/name@main: {Shard1}: the Hub at {hub.Url} answered 500 (Internal Server Error) after 6 tries",
            Assert.Throws<IrrException>(() => Client(hub, dir["hub"]).Snapshot("org/name", "main", "model", HubFiles.Model)).Message);
        Assert.Equal(1 + HubClient.MaxRetries, hub.Requests($"/org/name/resolve/{commit}/{Shard1}").Count);
    }

    [Fact]
    public void ARenamedRepoIsFollowedThroughItsRelativeRedirect()
    {
        using var dir = new TempDir();
        using var hub = new FakeHubServer();
        var files = ModelRepo();
        var repo = hub.Add("org/name");
        string commit = repo.Commit(files);
        hub.Renamed["org/old"] = "org/name";
        var (path, got) = Client(hub, dir["hub"]).File("org/old", "main", "model", "config.json");
        Assert.Equal(commit, got);
        Assert.Equal(files["config.json"], File.ReadAllBytes(path));
        Assert.Contains(hub.Log, r => r.Method == "HEAD" && r.Path == "/org/name/resolve/main/config.json");

        repo.Commit(files, "refs/pr/1"); // a revision with '/' keeps its escaping through the redirect
        Client(hub, dir["hub"]).File("org/old", "refs/pr/1", "model", "tokenizer.json");
        Assert.Contains(hub.Log, r => r.Method == "HEAD" && r.Path == "/org/name/resolve/refs%2Fpr%2F1/tokenizer.json");

        // A snapshot asks the revision API first, which redirects too (requests and httpx follow it for huggingface_hub);
        // the cache folder is the ID as given, as huggingface_hub names it.
        var (snapshot, snapshotCommit) = Client(hub, dir["hub"]).Snapshot("org/old", "main", "model", HubFiles.Model);
        Assert.Equal((Path.Combine(dir["hub"], "models--org--old", "snapshots", commit), commit), (snapshot, snapshotCommit));
        Assert.Contains(hub.Log, r => r.Method == "GET" && r.Path == "/api/models/org/name/revision/main");
        AssertLayout(dir["hub"], "models--org--old", commit, files, Picked);
    }

    [Fact]
    public void TheRevisionApiFollowsARenamedReposRelativeRedirect()
    {
        using var dir = new TempDir();
        using var hub = new FakeHubServer();
        var files = ModelRepo();
        string commit = hub.Add("org/name").Commit(files);
        hub.Renamed["org/Old"] = "org/name";
        Assert.Equal(commit, Client(hub, dir["hub"]).Snapshot("org/Old", "main", "model", HubFiles.Model).Commit);
        Assert.Equal(["/api/models/org/Old/revision/main", "/api/models/org/name/revision/main"], hub.Requests("/api/").Select(r => r.Path));
        AssertLayout(dir["hub"], "models--org--Old", commit, files, Picked); // cached under the name asked for, as huggingface_hub does
    }

    [Fact]
    public async Task TwoClientsDownloadingTheSameBlobTakeTurnsThroughHuggingFaceHubsLockAndFetchItOnce()
    {
        using var dir = new TempDir();
        using var hub = new FakeHubServer { WriteBytes = 8 << 10, WriteDelay = TimeSpan.FromMilliseconds(30) };
        var files = ModelRepo();
        string commit = hub.Add("org/name").Commit(files);
        string sha = FakeHubServer.Sha256(files[Shard1]);
        using var started = new ManualResetEventSlim();
        var first = Task.Run(() =>
        {
            using (HubClient.Observe(p => { if (p.Done > 0) started.Set(); }))
                return Client(hub, dir["hub"]).File("org/name", "main", "model", Shard1);
        });
        Assert.True(started.Wait(TimeSpan.FromSeconds(20)));
        var warnings = new System.Collections.Concurrent.ConcurrentQueue<string>();
        var second = Task.Run(() =>
        {
            using (Diagnostics.Listen(warnings.Enqueue))
                return Client(hub, dir["hub"]).File("org/name", "main", "model", Shard1);
        });
        var (a, b) = (await first, await second);
        Assert.Equal(a, b);
        Assert.Equal(files[Shard1], File.ReadAllBytes(a.Path));
        Assert.Single(hub.Requests("/cdn/" + sha));
        string lockFile = Path.Combine(dir["hub"], ".locks", "models--org--name", sha + ".lock");
        Assert.True(File.Exists(lockFile));
        if (!OperatingSystem.IsWindows()) // 0664, as huggingface_hub's WeakFileLock makes it
            Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead | UnixFileMode.GroupWrite | UnixFileMode.OtherRead, File.GetUnixFileMode(lockFile));
        Assert.Equal($"org/name@main: {Shard1}: waiting for another download of it (lock {lockFile})", Assert.Single(warnings));
        AssertLayout(dir["hub"], "models--org--name", commit, files, [Shard1]);
    }

    [Fact]
    public void TooManyRequestsAndServerErrorsAreRetriedThenSaidAsTheHubsAnswer()
    {
        using var dir = new TempDir();
        using var hub = new FakeHubServer();
        var files = ModelRepo();
        string commit = hub.Add("org/name").Commit(files);
        foreach (int status in new[] { 429, 503, 429 }) hub.FailFiles.Enqueue(status);
        Assert.Equal(files[Shard1], File.ReadAllBytes(Client(hub, dir["hub"]).File("org/name", "main", "model", Shard1).Path));
        Assert.Equal(4, hub.Requests("/org/name/resolve/main/" + Shard1).Count); // one try, then (not cached) retries
        hub.FailCdn.Enqueue(502); // the body's GET is retried too
        Assert.Equal(files[Shard2], File.ReadAllBytes(Client(hub, dir["hub"]).File("org/name", "main", "model", Shard2).Path));
        Assert.Equal(2, hub.Requests("/cdn/" + FakeHubServer.Sha256(files[Shard2])).Count);

        hub.ResolveStatus = 429;
        hub.Log.Clear();
        Assert.Equal($"org/name@main: config.json is not in the Hugging Face cache at {dir["hub"]} (commit {commit}; the Hub at {hub.Url} answered 429 (Too Many Requests) after 6 tries)",
            Assert.Throws<IrrException>(() => Client(hub, dir["hub"]).File("org/name", "main", "model", "config.json")).Message);
        Assert.Equal(1 + 1 + HubClient.MaxRetries, hub.Log.Count);
        Assert.Equal($"org/other@main: the Hub at {hub.Url} answered 429 (Too Many Requests) after 6 tries, and the Hugging Face cache at {dir["hub"]} does not hold it",
            Assert.Throws<IrrException>(() => Client(hub, dir["hub"]).File("org/other", "main", "model", "config.json")).Message);

        var warnings = new List<string>(); // cached: one try, then the cache
        hub.Log.Clear();
        using (Diagnostics.Listen(warnings.Add))
            Client(hub, dir["hub"]).File("org/name", "main", "model", Shard1);
        Assert.Single(hub.Log);
        Assert.Equal($"org/name@main: the Hub at {hub.Url} answered 429 (Too Many Requests); using commit {commit} from the Hugging Face cache", Assert.Single(warnings));
    }

    [Fact]
    public void AProxys404WithoutAnErrorCodeFallsBackToTheCacheAsHuggingFaceHubDoes()
    {
        using var dir = new TempDir();
        using var hub = new FakeHubServer();
        var files = ModelRepo();
        string commit = hub.Add("org/name").Commit(files);
        Client(hub, dir["hub"]).File("org/name", "main", "model", "config.json");
        hub.ResolveStatus = 404; // no X-Error-Code: not the Hub's own answer
        var warnings = new List<string>();
        using (Diagnostics.Listen(warnings.Add))
            Assert.Equal(files["config.json"], File.ReadAllBytes(Client(hub, dir["hub"]).File("org/name", "main", "model", "config.json").Path));
        Assert.Equal($"org/name@main: the Hub at {hub.Url} answered 404 (Not Found); using commit {commit} from the Hugging Face cache", Assert.Single(warnings));
        Assert.Equal($"org/name@main: tokenizer.json: not found on {hub.Url} (404)",
            Assert.Throws<IrrException>(() => Client(hub, dir["hub"]).File("org/name", "main", "model", "tokenizer.json")).Message);

        hub.ResolveStatus = null; // the Hub's own EntryNotFound is raised even when the repo is cached
        Assert.Equal("org/name@main: nope.json: no such file in the repo",
            Assert.Throws<IrrException>(() => Client(hub, dir["hub"]).File("org/name", "main", "model", "nope.json")).Message);
    }

    [Fact]
    public void AMalformedEndpointTimeoutOrCacheIsOneLineNamingItsVariable()
    {
        using var dir = new TempDir();
        HubSettings Of(params (string Key, string Value)[] env) => HubSettings.FromEnvironment(k => env.FirstOrDefault(e => e.Key == k).Value);
        string Error(Action act) => Assert.Throws<IrrException>(act).Message;
        foreach (string bad in new[] { "127.0.0.1:18080", "ftp://x", "http://exa mple", "http://x/?a=1" })
        {
            Assert.Equal($"HF_ENDPOINT '{bad}': not an http(s) URL", Error(() => Of(("HF_ENDPOINT", bad), ("HF_HOME", dir["home"]))));
            Assert.Equal($"HF_ENDPOINT '{bad}': not an http(s) URL", Error(() => new HubSettings(bad, null, dir["hub"], false)));
        }
        foreach (string name in new[] { "HF_HUB_ETAG_TIMEOUT", "HF_HUB_DOWNLOAD_TIMEOUT" })
            foreach (string bad in new[] { "0", "-3", "ten", "NaN", "1e9" })
                Assert.Equal($"{name} '{bad}': not a positive number of seconds (at most 604800)", Error(() => Of((name, bad), ("HF_HOME", dir["home"]))));
        Assert.Equal(TimeSpan.FromSeconds(2.5), Of(("HF_HUB_ETAG_TIMEOUT", "2.5"), ("HF_HOME", dir["home"])).MetadataTimeout);

        using var hub = new FakeHubServer();
        hub.Add("org/name").Commit(ModelRepo());
        File.WriteAllText(dir["file"], "not a directory");
        foreach (Action act in new Action[]
                 {
                     () => Client(hub, dir["file"]).Snapshot("org/name", "main", "model", HubFiles.Model),
                     () => Client(hub, dir["file"]).File("org/name", "main", "model", "config.json"),
                 })
        {
            string error = Error(act);
            Assert.StartsWith($"the Hugging Face cache {dir["file"]} (HF_HUB_CACHE, else HF_HOME/hub) cannot be written: ", error);
            Assert.DoesNotContain('\n', error);
        }
    }

    [Fact]
    public void SettingsComeFromTheEnvironmentAsHuggingFaceHubReadsThem()
    {
        using var dir = new TempDir();
        HubSettings Of(params (string Key, string Value)[] env) => HubSettings.FromEnvironment(k => env.FirstOrDefault(e => e.Key == k).Value);
        var defaults = Of(("HF_HOME", dir["home"]));
        Assert.Equal((HubSettings.DefaultEndpoint, (string?)null, dir["home/hub"], false), (defaults.Endpoint, defaults.Token, defaults.Cache, defaults.Offline));
        Assert.Equal("http://127.0.0.1:9", Of(("HF_ENDPOINT", "http://127.0.0.1:9/"), ("HF_HOME", dir["home"])).Endpoint);
        Assert.True(Of(("HF_HUB_OFFLINE", "yes"), ("HF_HOME", dir["home"])).Offline);

        Directory.CreateDirectory(dir["home"]);
        File.WriteAllText(dir["home/token"], "  hf_file\r\n");
        Assert.Equal("hf_file", Of(("HF_HOME", dir["home"])).Token);
        Assert.Equal("hf_env", Of(("HF_HOME", dir["home"]), ("HF_TOKEN", "hf_env\n")).Token);
        Assert.Equal("hf_legacy", Of(("HF_HOME", dir["home"]), ("HUGGING_FACE_HUB_TOKEN", "hf_legacy")).Token);
        File.WriteAllText(dir["other"], "hf_path");
        Assert.Equal("hf_path", Of(("HF_HOME", dir["home"]), ("HF_TOKEN_PATH", dir["other"])).Token);
        File.WriteAllText(dir["other"], "\n");
        Assert.Null(Of(("HF_HOME", dir["home"]), ("HF_TOKEN_PATH", dir["other"])).Token);
        Assert.Equal(TimeSpan.FromSeconds(30), Of(("HF_HOME", dir["home"]), ("HF_HUB_DOWNLOAD_TIMEOUT", "30")).StallTimeout);
    }

    [Fact]
    public void TheCurrentClientIsTheOverrideElseTheEnvironmentsWithTheCacheOverride()
    {
        using var dir = new TempDir();
        using (HubCache.Override(dir["cache"]))
            Assert.Equal(dir["cache"], HubClient.Current.Settings.Cache);
        var client = new HubClient(new HubSettings("http://127.0.0.1:9", "t", dir["x"], true));
        using (HubClient.Override(client)) Assert.Same(client, HubClient.Current);
        Assert.NotSame(client, HubClient.Current);
    }

    [Fact]
    public void AModelNeedsItsConfigTokenizerCardAndOneWeightLayout()
    {
        string[] common = ["config.json", "generation_config.json", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "README.md", ".gitattributes", "LICENSE"];
        string[] mistral = [.. common, "consolidated.safetensors", "model.safetensors.index.json", Shard1, Shard2, "params.json", "tokenizer.model.v3"];
        Assert.Equal(["config.json", "generation_config.json", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "README.md", "model.safetensors.index.json"],
            HubFiles.Model(mistral));
        Assert.Equal(["config.json", "model.safetensors"], HubFiles.Model(["config.json", "model.safetensors", "model.safetensors.index.json", "pytorch_model.bin", "original/model.safetensors"]));
        Assert.Equal(["config.json", "vocab.json", "merges.txt", "pytorch_model.bin.index.json"],
            HubFiles.Model(["config.json", "vocab.json", "merges.txt", "pytorch_model.bin.index.json", "pytorch_model-00001-of-00002.bin", "tf_model.h5", "flax_model.msgpack"]));
        Assert.Equal(["config.json", "pytorch_model.bin"], HubFiles.Model(["config.json", "pytorch_model.bin"]));
        Assert.Equal(["config.json", "model.safetensors"], HubFiles.Model(["consolidated.safetensors"])); // refused by name online
        Assert.Equal(["config.json", "model.safetensors", "additional_chat_templates/rag.jinja"],
            HubFiles.Model(["model.safetensors", "additional_chat_templates/rag.jinja", "additional_chat_templates/x/y.jinja"]));

        Assert.Equal(["adapter_config.json", "adapter_model.safetensors", "README.md"], HubFiles.Adapter(["adapter_config.json", "adapter_model.safetensors", "adapter_model.bin", "README.md", "training_args.bin"]));
        Assert.Equal(["adapter_config.json", "adapter_model.bin", "tokenizer.json", "tokenizer_config.json"], HubFiles.Adapter(["adapter_config.json", "adapter_model.bin", "tokenizer.json", "tokenizer_config.json"]));
        Assert.Equal(["adapter_config.json", "adapter_model.safetensors"], HubFiles.Adapter([]));
    }

    [Fact]
    public void AShardIndexNamesFilesBesideItOnly()
    {
        using var dir = new TempDir();
        File.WriteAllText(dir["index.json"], $"{{\"weight_map\": {{\"a\": \"{Shard1}\", \"b\": \"{Shard2}\", \"c\": \"{Shard1}\"}}}}");
        Assert.Equal([$"sub/{Shard1}", $"sub/{Shard2}"], HubFiles.ShardsOf(dir["index.json"], "sub/model.safetensors.index.json"));
        File.WriteAllText(dir["index.json"], "{\"weight_map\": {\"a\": \"../../secret\"}}");
        Assert.Equal($"{dir["index.json"]}: weight_map names '../../secret' for a, not a file beside the index",
            Assert.Throws<IrrException>(() => HubFiles.ShardsOf(dir["index.json"], "model.safetensors.index.json")).Message);
    }

    /// <summary>
    /// The tree @huggingface/hub's <c>snapshotDownload</c> (the Hub's JavaScript client, which writes the cache
    /// huggingface_hub reads) wrote for a tiny repo (tests/fixtures/hub/make-reference.mjs → reference-tree.json): the same
    /// files at the same commit, served by FakeHubServer and downloaded by HubClient, give the same entries, link targets,
    /// ref and blob contents. CACHEDIR.TAG and .locks/, which huggingface_hub writes and @huggingface/hub does not, are left out.
    /// </summary>
    [Fact]
    public void TheTreeMatchesWhatTheHubsJavaScriptClientWrites()
    {
        var reference = JsonNode.Parse(File.ReadAllText(Text.Fixtures.Local("hub/reference-tree.json")))!;
        string repoId = (string)reference["repo"]!, commit = (string)reference["commit"]!;
        var files = reference["files"]!.AsObject().ToDictionary(f => f.Key, f => Convert.FromBase64String((string)f.Value!));
        using var dir = new TempDir();
        using var hub = new FakeHubServer();
        hub.Add(repoId).Commit(files, "main", commit);

        var (snapshot, got) = Client(hub, dir["hub"]).Snapshot(repoId, "main", "model", all => all);

        Assert.Equal(commit, got);
        Assert.Equal(Path.Combine(dir["hub"], (string)reference["snapshot"]!), snapshot);
        var expected = reference["tree"]!.AsArray().Select(e => e!.ToJsonString()).ToList();
        Assert.Equal(expected, Tree(dir["hub"], dir["hub"]).Select(e => e.ToJsonString()).ToList());
    }

    /// <summary>The cache's entries as make-reference.mjs records them: by path, each folder's names in ordinal order.</summary>
    private static IEnumerable<JsonObject> Tree(string root, string folder)
    {
        foreach (var entry in new DirectoryInfo(folder).EnumerateFileSystemInfos().Where(e => e.Name is not ("CACHEDIR.TAG" or ".locks")).OrderBy(e => e.Name, StringComparer.Ordinal))
        {
            string path = Path.GetRelativePath(root, entry.FullName);
            if (entry.LinkTarget is { } target) yield return new JsonObject { ["path"] = path, ["kind"] = "link", ["target"] = target };
            else if (entry is DirectoryInfo)
            {
                yield return new JsonObject { ["path"] = path, ["kind"] = "dir" };
                foreach (var inner in Tree(root, entry.FullName)) yield return inner;
            }
            else if (path.Split('/').Contains("refs")) yield return new JsonObject { ["path"] = path, ["kind"] = "ref", ["content"] = File.ReadAllText(entry.FullName) };
            else yield return new JsonObject { ["path"] = path, ["kind"] = "file", ["sha256"] = FakeHubServer.Sha256(File.ReadAllBytes(entry.FullName)) };
        }
    }
}
