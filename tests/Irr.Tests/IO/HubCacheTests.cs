using System.Security.Cryptography;
using Irr.IO;

namespace Irr.Tests.IO;

/// <summary>
/// A Hub cache written as huggingface_hub writes it (its "Understand caching" guide and file_download.py):
/// <c>models--org--name/blobs/&lt;sha256&gt;</c>, <c>refs/&lt;branch&gt;</c> holding a 40-hex commit without a newline,
/// <c>snapshots/&lt;commit&gt;/&lt;file&gt;</c> relative symlinks <c>../../blobs/&lt;etag&gt;</c> (one more "../" per folder).
/// </summary>
internal static class HubCacheTrees
{
    /// <summary>Moves every file of <paramref name="source"/> into the cache's repo as blobs with snapshot links at <paramref name="commit"/>; writes refs/<paramref name="branch"/> when given. Returns the snapshot directory.</summary>
    public static string Add(string cache, string repoId, string source, string commit, string? branch = "main", string repoType = "models")
    {
        string repo = Path.Combine(cache, repoType + "--" + repoId.Replace("/", "--"));
        string blobs = Path.Combine(repo, "blobs");
        string snapshot = Path.Combine(repo, "snapshots", commit);
        Directory.CreateDirectory(blobs);
        foreach (string file in Directory.GetFiles(source, "*", SearchOption.AllDirectories))
        {
            string relative = Path.GetRelativePath(source, file);
            string etag = Convert.ToHexStringLower(SHA256.HashData(File.ReadAllBytes(file)));
            string blob = Path.Combine(blobs, etag);
            if (!File.Exists(blob)) File.Copy(file, blob);
            string link = Path.Combine(snapshot, relative);
            Directory.CreateDirectory(Path.GetDirectoryName(link)!);
            string up = string.Concat(Enumerable.Repeat("../", relative.Count(c => c == '/') + 2));
            File.CreateSymbolicLink(link, up + "blobs/" + etag);
        }
        if (branch is not null)
        {
            Directory.CreateDirectory(Path.GetDirectoryName(Path.Combine(repo, "refs", branch))!);
            File.WriteAllText(Path.Combine(repo, "refs", branch), commit);
        }
        return snapshot;
    }
}

public class HubCacheTests
{
    private const string CommitA = "0123456789abcdef0123456789abcdef01234567";
    private const string CommitB = "89abcdef0123456789abcdef0123456789abcdef";

    private static string Source(TempDir dir, string name, string text)
    {
        Directory.CreateDirectory(dir[name + "/sub"]);
        File.WriteAllText(dir[name + "/config.json"], text);
        File.WriteAllText(dir[name + "/sub/nested.txt"], "nested " + text);
        return dir[name];
    }

    [Fact]
    public void TheCacheDirectoryFollowsHuggingFaceHubsPrecedence()
    {
        string home = Environment.GetFolderPath(Environment.SpecialFolder.UserProfile);
        string Of(params (string Key, string Value)[] env) => HubCache.FromEnvironment(k => env.FirstOrDefault(e => e.Key == k).Value);
        Assert.Equal(Path.Combine(home, ".cache", "huggingface", "hub"), Of());
        Assert.Equal("/x/hub", Of(("XDG_CACHE_HOME", "/x/no"), ("HF_HOME", "/x")));
        Assert.Equal("/xdg/huggingface/hub", Of(("XDG_CACHE_HOME", "/xdg")));
        Assert.Equal("/c", Of(("HF_HOME", "/x"), ("HF_HUB_CACHE", "/c"), ("HUGGINGFACE_HUB_CACHE", "/legacy")));
        Assert.Equal("/legacy", Of(("HF_HOME", "/x"), ("HUGGINGFACE_HUB_CACHE", "/legacy")));
        Assert.Equal(home + "/h/hub", Of(("HF_HOME", "~/h")));
    }

    [Theory]
    [InlineData("gpt2", null)]
    [InlineData("meta-llama/Llama-2-7b-chat-hf", null)]
    [InlineData("org/name.v1_x", null)]
    [InlineData("a/b/c", "a repo ID is 'name' or 'namespace/name'")]
    [InlineData("org/na me", "a repo ID holds letters")]
    [InlineData("org/-name", "a repo ID holds letters")]
    [InlineData("org--x/name", "cannot hold '--' or '..'")]
    [InlineData("org/na..me", "cannot hold '--' or '..'")]
    [InlineData("org/name.git", "cannot end in '.git'")]
    public void RepoIdsAreValidatedAsValidateRepoIdDoes(string repoId, string? problem)
    {
        if (problem is null) Assert.Null(HubCache.RepoIdProblem(repoId));
        else Assert.Contains(problem, HubCache.RepoIdProblem(repoId));
        Assert.NotNull(HubCache.RepoIdProblem("o/" + new string('n', 95))); // 97 characters
    }

    [Fact]
    public void ARevisionResolvesByBranchTagOrCommit()
    {
        using var dir = new TempDir();
        string cache = dir["hub"];
        HubCacheTrees.Add(cache, "org/name", Source(dir, "a", "A"), CommitA, "main");
        HubCacheTrees.Add(cache, "org/name", Source(dir, "b", "B"), CommitB, "v2");
        string repo = Path.Combine(cache, "models--org--name");

        var (snapshot, commit) = HubCache.Resolve("org/name", "main", cache);
        Assert.Equal((Path.Combine(repo, "snapshots", CommitA), CommitA), (snapshot, commit));
        Assert.Equal("A", File.ReadAllText(Path.Combine(snapshot, "config.json")));
        Assert.Equal("nested A", File.ReadAllText(Path.Combine(snapshot, "sub", "nested.txt")));
        Assert.Equal(CommitB, HubCache.Resolve("org/name", "v2", cache).Commit);
        Assert.Equal(Path.Combine(repo, "snapshots", CommitB), HubCache.Resolve("org/name", CommitB, cache).Snapshot);
    }

    [Fact]
    public void AMissingRepoRevisionOrCommitIsOneLineNamingTheCache()
    {
        using var dir = new TempDir();
        string cache = dir["hub"];
        HubCacheTrees.Add(cache, "org/name", Source(dir, "a", "A"), CommitA, "main");
        string Error(string repo, string revision) => Assert.Throws<IrrException>(() => HubCache.Resolve(repo, revision, cache)).Message;

        Assert.StartsWith($"org/other@main: no such local directory, and the model repo org/other is not in the Hugging Face cache at {cache}", Error("org/other", "main"));
        Assert.StartsWith($"org/name@dev: revision dev is not in the Hugging Face cache at {cache}", Error("org/name", "dev"));
        Assert.StartsWith($"org/name@{CommitB}: commit {CommitB} is not in the Hugging Face cache at {cache}", Error("org/name", CommitB));
        Assert.Equal("org/name@../x: not a revision", Error("org/name", "../x"));
        Assert.DoesNotContain('\n', Error("org/other", "main"));
    }

    [Fact]
    public void AMalformedRefIsRefused()
    {
        using var dir = new TempDir();
        string cache = dir["hub"];
        HubCacheTrees.Add(cache, "org/name", Source(dir, "a", "A"), CommitA, "main");
        string refs = Path.Combine(cache, "models--org--name", "refs", "main");
        File.WriteAllText(refs, new string('0', 10_000));
        Assert.Equal($"org/name@main: {refs} does not hold a commit hash", Assert.Throws<IrrException>(() => HubCache.Resolve("org/name", "main", cache)).Message);
    }

    [Fact]
    public void ASymlinkLeavingTheRepoFolderIsRefused()
    {
        using var dir = new TempDir();
        string cache = dir["hub"];
        string snapshot = HubCacheTrees.Add(cache, "org/name", Source(dir, "a", "A"), CommitA, "main");
        File.WriteAllText(dir["secret"], "secret");
        File.CreateSymbolicLink(Path.Combine(snapshot, "tokenizer.json"), "../../../../secret");
        var error = Assert.Throws<IrrException>(() => HubCache.Resolve("org/name", "main", cache)).Message;
        Assert.Equal($"org/name@main: {Path.Combine(snapshot, "tokenizer.json")} links outside the repo folder {Path.Combine(cache, "models--org--name")}", error);

        // A snapshot directory that is itself a link out of the repo.
        string other = HubCacheTrees.Add(dir["elsewhere"], "org/x", Source(dir, "b", "B"), CommitB, null);
        Directory.CreateDirectory(Path.Combine(cache, "models--org--y", "snapshots"));
        Directory.CreateSymbolicLink(Path.Combine(cache, "models--org--y", "snapshots", CommitB), other);
        Assert.Contains("links outside the repo folder", Assert.Throws<IrrException>(() => HubCache.Resolve("org/y", CommitB, cache)).Message);
    }

    [Theory]
    [InlineData("org/name", "org/name", "main")]
    [InlineData("org/name@v2", "org/name", "v2")]
    [InlineData("./org/name", null, null)]
    [InlineData("/abs/org/name", null, null)]
    [InlineData("~/org/name", null, null)]
    [InlineData("name-without-org", null, null)]
    [InlineData("a/b/c", null, null)]
    public void AReferenceIsAHubIdOnlyWhenItIsNotALocalPath(string text, string? repoId, string? revision)
    {
        var reference = ModelReference.Parse(text);
        Assert.Equal((repoId, revision), (reference.RepoId, reference.Revision));
    }

    [Fact]
    public void AnExistingDirectoryIsLocalEvenWhenItLooksLikeAHubId()
    {
        using var dir = new TempDir();
        Directory.CreateDirectory(dir["org/name"]);
        Assert.False(ModelReference.Parse(dir["org/name"]).IsHub);
        using var cache = HubCache.Override(dir["hub"]);
        Assert.Equal((dir["org/name"], (string?)null), ModelReference.Parse(dir["org/name"]).Resolve());
    }
}
