using System.Text.Json.Nodes;
using Irr.IO;
using Irr.Tests.IO;

namespace Irr.Tests.Cli;

/// <summary>
/// <c>--model org/name</c> and <c>irr inspect org/name</c> from a cache laid out as huggingface_hub lays it out: the same
/// result as the model's own directory. The cache is given through <see cref="HubCache.Override"/> (the CLI runs
/// in-process, in parallel with other tests, so the environment is not changed).
/// </summary>
public class HubModelCommandTests
{
    private const string Commit = "fedcba9876543210fedcba9876543210fedcba98";

    [Fact]
    public void ScoreAndInspectTakeAHubIdFromTheCache()
    {
        using var dir = new TempDir();
        string model = ModelCommandTests.ChatModel(dir);
        string snapshot = HubCacheTrees.Add(dir["hub"], "my-org/tiny-chat", model, Commit);
        File.WriteAllText(dir["data.jsonl"], """{"instruction": "say 0", "output": "the 0"}""" + "\n");
        using var cache = HubCache.Override(dir["hub"]);

        var (code, _, error) = CliRunner.Run("score", "--model", model, "--data", dir["data.jsonl"], "-o", dir["local.json"]);
        Assert.True(code == 0, error);
        (code, _, error) = CliRunner.Run("score", "--model", "my-org/tiny-chat", "--data", dir["data.jsonl"], "-o", dir["hub.json"]);
        Assert.True(code == 0, error);
        Assert.Equal(File.ReadAllText(dir["local.json"]).Replace(model, snapshot), File.ReadAllText(dir["hub.json"]));

        (code, string local, error) = CliRunner.Run("inspect", model);
        Assert.True(code == 0, error);
        (code, string hub, error) = CliRunner.Run("inspect", $"my-org/tiny-chat@{Commit}");
        Assert.True(code == 0, error);
        // The same description, with the repo and commit the ID resolved to under the path.
        string hubLine = "Hub repo".PadRight(local.Split('\n')[0].IndexOf(model, StringComparison.Ordinal)) + $"my-org/tiny-chat at commit {Commit}\n";
        int firstLine = local.IndexOf('\n') + 1;
        Assert.Equal((local[..firstLine] + hubLine + local[firstLine..]).Replace(model, snapshot), hub);
    }

    [Fact]
    public void AModelMissingFromTheCacheIsOneLine()
    {
        using var dir = new TempDir();
        File.WriteAllText(dir["data.jsonl"], """{"instruction": "a", "output": "b"}""" + "\n");
        using var cache = HubCache.Override(dir["hub"]);
        var (code, _, error) = CliRunner.Run("score", "--model", "my-org/absent@v1", "--data", dir["data.jsonl"], "-o", dir["s.json"]);
        Assert.Equal(2, code);
        Assert.StartsWith($"error: score: model my-org/absent@v1: no such local directory, and the model repo my-org/absent is not in the Hugging Face cache at {dir["hub"]}", error);
        Assert.Single(error.TrimEnd().Split('\n'));
        Assert.False(File.Exists(dir["s.json"]));
    }

    [Fact]
    public void AnAdapterTrainedOnAHubModelNamesItsBaseByHubIdAndCommit()
    {
        using var dir = new TempDir();
        string model = ModelCommandTests.ChatModel(dir);
        HubCacheTrees.Add(dir["hub"], "my-org/tiny-chat", model, Commit, "v1");
        File.WriteAllText(dir["data.jsonl"], """{"instruction": "say 0", "output": "the 0"}""" + "\n");
        using var cache = HubCache.Override(dir["hub"]);
        var (code, _, error) = CliRunner.Run("train", "--model", "my-org/tiny-chat@v1", "--data", dir["data.jsonl"], "--lora", "--rank", "2", "--targets", "q_proj", "--epochs", "1", "-o", dir["lora"]);
        Assert.True(code == 0, error);
        var config = System.Text.Json.Nodes.JsonNode.Parse(File.ReadAllText(dir["lora/adapter_config.json"]))!;
        Assert.Equal("my-org/tiny-chat", (string?)config["base_model_name_or_path"]); // what PEFT loads on another machine, not this one's cache path
        Assert.Equal(Commit, (string?)config["revision"]);
    }

    [Fact]
    public void AHubAdapterGivenAsTheModelSaysWhereItGoes()
    {
        using var dir = new TempDir();
        Directory.CreateDirectory(dir["lora"]);
        File.WriteAllText(dir["lora/adapter_config.json"], """{"peft_type": "LORA", "r": 2, "lora_alpha": 4, "target_modules": ["q_proj"]}""");
        File.WriteAllText(dir["lora/adapter_model.safetensors"], "not read");
        HubCacheTrees.Add(dir["hub"], "my-org/code-lora", dir["lora"], Commit);
        File.WriteAllText(dir["data.jsonl"], """{"instruction": "a", "output": "b"}""" + "\n");
        using var cache = HubCache.Override(dir["hub"]);
        var (code, _, error) = CliRunner.Run("score", "--model", "my-org/code-lora", "--data", dir["data.jsonl"], "-o", dir["s.json"]);
        Assert.Equal(2, code);
        Assert.Equal("error: score: model my-org/code-lora: a PEFT adapter (adapter_config.json, no config.json), not a model; give it with --adapter", error.TrimEnd());
        (code, _, error) = CliRunner.Run("safety-vector", "--aligned", "my-org/code-lora", "--unaligned", "my-org/code-lora", "-o", dir["v.safetensors"]);
        Assert.Equal(2, code);
        Assert.Equal("error: safety-vector: aligned my-org/code-lora: a PEFT adapter (adapter_config.json, no config.json), not a model; give it with an adapter option", error.TrimEnd());
    }

    [Fact]
    public void MergekitsModelPlusLoraFormSaysToGiveTheAdapterApart()
    {
        using var dir = new TempDir();
        File.WriteAllText(dir["data.jsonl"], """{"instruction": "a", "output": "b"}""" + "\n");
        var (code, _, error) = CliRunner.Run("score", "--model", "my-org/base@v1+my-org/code-lora", "--data", dir["data.jsonl"], "-o", dir["s.json"]);
        Assert.Equal(2, code);
        Assert.Equal("error: score: model my-org/base@v1+my-org/code-lora: give the adapter apart: --model my-org/base@v1 --adapter my-org/code-lora (mergekit's model+lora form is not read)", error.TrimEnd());
    }

    [Fact]
    public void AFileMissingFromTheSnapshotIsNamed()
    {
        using var dir = new TempDir();
        string model = ModelCommandTests.ChatModel(dir);
        File.Delete(Path.Combine(model, "config.json"));
        HubCacheTrees.Add(dir["hub"], "my-org/partial", model, Commit);
        using var cache = HubCache.Override(dir["hub"]);
        var (code, _, error) = CliRunner.Run("inspect", "my-org/partial"); // offline (the tests' HF_HUB_OFFLINE): the snapshot is incomplete
        Assert.Equal(2, code);
        Assert.Equal($"error: my-org/partial@main: config.json is not in the Hugging Face cache at {dir["hub"]} (commit {Commit}; HF_HUB_OFFLINE is set)", error.TrimEnd());
    }
}

public class HubProvenanceTests
{
    private const string Commit = "00112233445566778899aabbccddeeff00112233";

    [Fact]
    public void ReportsRecordTheRepoAndTheResolvedCommit()
    {
        using var dir = new TempDir();
        Directory.CreateDirectory(dir["src"]);
        File.WriteAllText(dir["src/config.json"], "{}");
        File.WriteAllText(dir["src/model.safetensors"], "not read: binding only resolves the snapshot");
        string snapshot = HubCacheTrees.Add(dir["hub"], "my-org/tiny", dir["src"], Commit, "v1");
        using var cache = HubCache.Override(dir["hub"]);
        var job = Irr.Jobs.JobSchema.Of<Irr.Model.ScoreJob>().Bind<Irr.Model.ScoreJob>(new Dictionary<string, IReadOnlyList<string>>
        {
            ["model"] = ["my-org/tiny@v1"], ["data"] = [dir["d.jsonl"]], ["output"] = [dir["s.json"]],
        });
        Assert.Equal(snapshot, job.Model);
        var inputs = Irr.Jobs.Provenance.InputsOf(job);
        Assert.Equal("""{"repo_id":"my-org/tiny","repo_type":"model","commit":"00112233445566778899aabbccddeeff00112233","path":""}""", inputs["model_hub"]!.ToJsonString());
        Assert.Null(inputs["data_hub"]);
        Assert.Null(HubCache.RepoOfSnapshot(dir["src"]));
    }
}

/// <summary>Hub IDs in recipes: kept as given (not made paths of the recipe's directory), resolved per step, and recorded in run.json with the commit they resolved to.</summary>
public class HubRecipeTests
{
    private const string First = "1111111111111111111111111111111111111111";
    private const string Second = "2222222222222222222222222222222222222222";
    private const string Third = "3333333333333333333333333333333333333333";
    private const string Fourth = "4444444444444444444444444444444444444444";

    [Fact]
    public void ARecipeStepTakesAHubIdAndRerunsWhenTheFilesItReadsChange()
    {
        using var dir = new TempDir();
        string model = ModelCommandTests.ChatModel(dir);
        HubCacheTrees.Add(dir["hub"], "my-org/tiny-chat", model, First);
        File.WriteAllText(dir["data.jsonl"], """{"instruction": "say 0", "output": "the 0"}""" + "\n");
        File.WriteAllText(dir["recipe.yaml"], """
            output: out
            steps:
              - score: {model: my-org/tiny-chat, data: data.jsonl}
            """);
        using var cache = HubCache.Override(dir["hub"]);
        JsonNode Step() => JsonNode.Parse(File.ReadAllText(dir["out/run.json"]))!["steps"]![0]!;

        var (code, _, error) = CliRunner.Run("run", dir["recipe.yaml"]);
        Assert.True(code == 0, error);
        Assert.Contains($"irr score --model my-org/tiny-chat@{First} --data", error); // pinned to the commit the recipe was checked against
        Assert.Equal($"my-org/tiny-chat@{First}", (string?)Step()["hub"]!["my-org/tiny-chat"]);
        var inputs = Step()["inputs"]!.AsObject();
        Assert.StartsWith("blobs ", (string?)inputs["my-org/tiny-chat"]);
        Assert.Equal(dir["data.jsonl"], Assert.Single(inputs, kv => kv.Key != "my-org/tiny-chat").Key);

        (code, _, error) = CliRunner.Run("run", dir["recipe.yaml"]);
        Assert.True(code == 0, error);
        Assert.Contains("skipped (up to date)", error);

        // main moves to a commit that adds a file the step does not read: still up to date.
        File.WriteAllText(Path.Combine(model, "notes.txt"), "not read by any command");
        HubCacheTrees.Add(dir["hub"], "my-org/tiny-chat", model, Second);
        (code, _, error) = CliRunner.Run("run", dir["recipe.yaml"]);
        Assert.True(code == 0, error);
        Assert.Contains("skipped (up to date)", error);

        // ... or that changes only the model's card (README.md), which score, writing no card, does not read.
        File.WriteAllText(Path.Combine(model, "README.md"), "---\nlicense: mit\n---\n# tiny\n");
        HubCacheTrees.Add(dir["hub"], "my-org/tiny-chat", model, Fourth);
        (code, _, error) = CliRunner.Run("run", dir["recipe.yaml"]);
        Assert.True(code == 0, error);
        Assert.Contains("skipped (up to date)", error);

        // main moves to a commit that changes a file it reads (the tokenizer's config): the step reruns.
        var tokenizerConfig = JsonNode.Parse(File.ReadAllText(Path.Combine(model, "tokenizer_config.json")))!.AsObject();
        tokenizerConfig["model_max_length"] = 4096;
        File.WriteAllText(Path.Combine(model, "tokenizer_config.json"), tokenizerConfig.ToJsonString());
        HubCacheTrees.Add(dir["hub"], "my-org/tiny-chat", model, Third);
        (code, _, error) = CliRunner.Run("run", dir["recipe.yaml"]);
        Assert.True(code == 0, error);
        Assert.DoesNotContain("skipped", error);
        Assert.Equal($"my-org/tiny-chat@{Third}", (string?)Step()["hub"]!["my-org/tiny-chat"]);
    }

    [Fact]
    public void ALocalDirectoryBesideTheRecipeWinsOverAHubId()
    {
        using var dir = new TempDir();
        string model = ModelCommandTests.ChatModel(dir);
        Directory.CreateDirectory(dir["my-org"]);
        Directory.Move(model, dir["my-org/tiny-chat"]); // a local directory of the same name, as transformers prefers one
        File.WriteAllText(dir["data.jsonl"], """{"instruction": "say 0", "output": "the 0"}""" + "\n");
        File.WriteAllText(dir["recipe.yaml"], """
            output: out
            steps:
              - score: {model: my-org/tiny-chat, data: data.jsonl}
            """);
        using var cache = HubCache.Override(dir["hub"]); // empty: the Hub is not asked
        var (code, _, error) = CliRunner.Run("run", dir["recipe.yaml"]);
        Assert.True(code == 0, error);
        Assert.Contains($"--model {dir["my-org/tiny-chat"]}", error);
    }

    [Fact]
    public void AHubIdMissingFromTheCacheStopsTheRecipeBeforeAnyStep()
    {
        using var dir = new TempDir();
        File.WriteAllText(dir["data.jsonl"], """{"instruction": "say 0", "output": "the 0"}""" + "\n");
        File.WriteAllText(dir["recipe.yaml"], """
            output: out
            steps:
              - score: {model: my-org/absent, data: data.jsonl}
            """);
        using var cache = HubCache.Override(dir["hub"]);
        var (code, _, error) = CliRunner.Run("run", dir["recipe.yaml"]);
        Assert.Equal(2, code);
        Assert.StartsWith($"error: {dir["recipe.yaml"]} line 3: score: model my-org/absent@main: no such local directory, and the model repo my-org/absent is not in the Hugging Face cache", error);
        Assert.False(File.Exists(dir["out/run.json"]));
    }
}
