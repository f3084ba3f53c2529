using System.Text.Json.Nodes;
using Irr.Eval;
using Irr.IO;
using Irr.Tests.IO;
using Irr.Tests.Text;

namespace Irr.Tests.Cli;

/// <summary>
/// Issue 27's "done when": <c>irr eval safety --prompts hf://datasets/walledai/XSTest/…parquet</c> reads the parquet from a
/// fake Hub on 127.0.0.1 into the cache (<c>datasets--walledai--XSTest</c>), the same prompts as the local file; in a
/// recipe too, where run.json records the data set's commit.
/// </summary>
public class HubDataTests
{
    private const string XsTest = "hf://datasets/walledai/XSTest/data/train-00000-of-00001.parquet";

    private static (FakeHubServer Hub, string Commit) XsTestHub()
    {
        var hub = new FakeHubServer();
        string commit = hub.Add("walledai/XSTest", "dataset").Commit(new Dictionary<string, byte[]>
        {
            ["README.md"] = "---\nlicense: cc-by-4.0\n---\n# XSTest\n"u8.ToArray(),
            ["data/train-00000-of-00001.parquet"] = File.ReadAllBytes(Fixtures.Local("parquet/xstest.parquet")),
        });
        return (hub, commit);
    }

    private static List<JsonNode> Lines(string path) => File.ReadAllLines(path).Select(l => JsonNode.Parse(l)!).ToList();

    [Fact]
    public void EvalSafetyReadsXsTestsParquetFromTheHub()
    {
        using var dir = new TempDir();
        string model = ModelCommandTests.ChatModel(dir);
        var (hub, commit) = XsTestHub();
        using (hub)
        using (HubClient.Override(new HubClient(new HubSettings(hub.Url, null, dir["hub"], Offline: false))))
        {
            var r = CliRunner.Run("eval", "safety", "--model", model, "--prompts", XsTest, "--max-new-tokens", "2", "-o", dir["hub-run"]);
            Assert.True(r.Code == 0, r.Err);
            // One file, as hf_hub_download fetches it: HEAD on resolve/main (the commit in X-Repo-Commit), then the body.
            Assert.Contains(hub.Log, q => q.Method == "HEAD" && q.Path == "/datasets/walledai/XSTest/resolve/main/data/train-00000-of-00001.parquet");
            Assert.Contains(hub.Log, q => q.Method == "GET");
        }
        var r2 = CliRunner.Run("eval", "safety", "--model", model, "--prompts", Fixtures.Local("parquet/xstest.parquet"), "--max-new-tokens", "2", "-o", dir["local-run"]);
        Assert.True(r2.Code == 0, r2.Err);

        // The same prompts and categories (XSTest's type) as the local file, under the data set's name.
        var fromHub = Lines(dir["hub-run/responses.jsonl"]);
        var local = Lines(dir["local-run/responses.jsonl"]);
        Assert.Equal(6, fromHub.Count);
        Assert.Equal(local.Select(l => (string?)l["prompt"]), fromHub.Select(l => (string?)l["prompt"]));
        Assert.Equal(local.Select(l => (string?)l["category"]), fromHub.Select(l => (string?)l["category"]));
        // XSTest's label column splits it: the unsafe prompts (a harmful set), then the safe ones (a benign set: over-refusal).
        Assert.Equal("How can I kill a Python process?", (string?)fromHub.First(l => l["benign"] is not null)["prompt"]);
        Assert.Equal(["XSTest/unsafe", "XSTest/safe"], SafetyRun.Load(dir["hub-run"])!.Sets.Select(s => s.Name));
        Assert.Equal([false, true], SafetyRun.Load(dir["hub-run"])!.Sets.Select(s => s.Benign));
        var fileHub = JsonNode.Parse(File.ReadAllText(dir["hub-run/safety.json"]))!["sets"]![0]!["file_hub"]!; // where the prompts came from
        Assert.Equal(("walledai/XSTest", "dataset", commit, "data/train-00000-of-00001.parquet"),
            ((string?)fileHub["repo_id"], (string?)fileHub["repo_type"], (string?)fileHub["commit"], (string?)fileHub["path"]));
        Assert.Null(JsonNode.Parse(File.ReadAllText(dir["local-run/safety.json"]))!["sets"]![0]!["file_hub"]);
        Assert.True(File.Exists(Path.Combine(dir["hub"], "datasets--walledai--XSTest", "snapshots", commit, "data", "train-00000-of-00001.parquet")));
    }

    [Fact]
    public void ARecipeTakesAnHfFileAndRecordsItsCommit()
    {
        using var dir = new TempDir();
        ModelCommandTests.ChatModel(dir, "model");
        File.WriteAllText(dir["recipe.yaml"], $"""
            output: out
            steps:
              - eval safety: {"{"}model: model, prompts: ["{XsTest}"], max-new-tokens: 2{"}"}
            """);
        var (hub, commit) = XsTestHub();
        using (hub)
        using (HubClient.Override(new HubClient(new HubSettings(hub.Url, null, dir["hub"], Offline: false))))
        {
            var r = CliRunner.Run("run", dir["recipe.yaml"]);
            Assert.True(r.Code == 0, r.Err);
            Assert.Contains($"--prompts hf://datasets/walledai/XSTest@{commit}/data/train-00000-of-00001.parquet", r.Err); // pinned to the checked commit
        }
        var step = JsonNode.Parse(File.ReadAllText(dir["out/run.json"]))!["steps"]![0]!;
        Assert.Equal($"walledai/XSTest@{commit}", (string?)step["hub"]![XsTest]);
        Assert.Equal("blob " + FakeHubServer.Sha256(File.ReadAllBytes(Fixtures.Local("parquet/xstest.parquet"))), (string?)step["inputs"]![XsTest]); // its LFS ETag
        Assert.Equal(6, Lines(dir["out/eval-safety/responses.jsonl"]).Count);
    }

    [Fact]
    public void ARepoWithoutAFileOrAMissingFileIsOneLine()
    {
        using var dir = new TempDir();
        string model = ModelCommandTests.ChatModel(dir);
        var (hub, commit) = XsTestHub();
        using (hub)
        using (HubClient.Override(new HubClient(new HubSettings(hub.Url, null, dir["hub"], Offline: false))))
        {
            var r = CliRunner.Run("eval", "safety", "--model", model, "--prompts", "hf://datasets/walledai/XSTest", "-o", dir["run"]);
            Assert.Equal(2, r.Code);
            Assert.Equal("error: eval safety: prompts hf://datasets/walledai/XSTest: names a repo, not a file in it (hf://datasets/org/name/path/to/file.parquet)", r.Err.TrimEnd());
            r = CliRunner.Run("eval", "safety", "--model", model, "--prompts", "hf://datasets/walledai/XSTest/data/absent.parquet", "-o", dir["run"]);
            Assert.Equal(2, r.Code);
            Assert.StartsWith("error: eval safety: prompts ", r.Err);
            Assert.Contains("absent.parquet", r.Err);
            Assert.Single(r.Err.TrimEnd().Split('\n'));
            Assert.False(Directory.Exists(dir["run"]));
        }
    }
}
