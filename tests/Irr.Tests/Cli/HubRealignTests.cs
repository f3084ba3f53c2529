using System.Text.Json.Nodes;
using Irr.IO;
using Irr.Tests.IO;

namespace Irr.Tests.Cli;

/// <summary>
/// Issue 27's "done when": <c>irr realign --base meta-llama/Llama-2-7b-chat-hf --adapter my-org/code-lora …</c> against a
/// fake Hub on 127.0.0.1 (<see cref="FakeHubServer"/>) gives the same model as the same directories given as paths, and a
/// second run from the filled cache with the Hub unreachable and offline asks nothing; a gated base is one line.
/// </summary>
public class HubRealignTests
{
    private const string Base = "meta-llama/Llama-2-7b-chat-hf";
    private const string Lora = "my-org/code-lora";

    private static Dictionary<string, byte[]> FilesOf(string directory) =>
        Directory.GetFiles(directory, "*", SearchOption.AllDirectories)
            .ToDictionary(f => Path.GetRelativePath(directory, f).Replace('\\', '/'), File.ReadAllBytes);

    private static (int Code, string Out, string Err) Ok((int Code, string Out, string Err) r)
    {
        Assert.True(r.Code == 0, r.Err);
        return r;
    }

    [Fact]
    public void RealignTakesTheBaseAndTheAdapterFromTheHubThenFromTheCacheOffline()
    {
        using var dir = new TempDir();
        string aligned = ModelCommandTests.ChatModel(dir, "aligned", seed: 1);
        string task = IrrCommandTests.Records(dir, "task.jsonl", 4, "compute");
        Ok(CliRunner.Run("train", "--model", aligned, "--data", task, "--lora", "--rank", "2", "--targets", "q_proj,v_proj", "--epochs", "2", "--lr", "1e-2", "--no-model-card", "-o", dir["adapter"]));
        Ok(CliRunner.Run("safety-vector", "--aligned", aligned, "--unaligned", ModelCommandTests.ChatModel(dir, "unaligned", seed: 5), "--modules", "q_proj,v_proj", "-o", dir["v.safetensors"]));
        Ok(CliRunner.Run("fisher", "--model", aligned, "--data", task, "--modules", "q_proj,v_proj", "-o", dir["f.safetensors"]));
        string[] rest = ["--safety-vector", dir["v.safetensors"], "--fisher", dir["f.safetensors"], "--calibration", task, "--modules", "q_proj,v_proj", "--dtype", "f32"];
        Ok(CliRunner.Run(["realign", "--base", aligned, "--adapter", dir["adapter"], .. rest, "-o", dir["local"]]));

        using var hub = new FakeHubServer();
        string baseCommit = hub.Add(Base).Commit(FilesOf(aligned));
        string loraCommit = hub.Add(Lora).Commit(FilesOf(dir["adapter"]), branch: "main");
        var online = new HubClient(new HubSettings(hub.Url, null, dir["hub"], Offline: false));
        (int Code, string Out, string Err) run;
        using (HubClient.Override(online))
            run = Ok(CliRunner.Run(["realign", "--base", Base, "--adapter", Lora, .. rest, "-o", dir["from-hub"]]));
        Assert.Contains("downloading config.json", run.Err); // a bar per file (plain lines: standard error is not a terminal)
        Assert.Contains("downloaded adapter_model.safetensors", run.Err);
        Assert.Contains(hub.Log, r => r.Path == $"/api/models/{Base}/revision/main");

        // The same model as from the directories: every tensor equal.
        using (var local = ModelDirectory.Open(dir["local"]))
        using (var fromHub = ModelDirectory.Open(dir["from-hub"]))
        {
            Assert.Equal(local.Tensors.Select(t => t.Name).Order(), fromHub.Tensors.Select(t => t.Name).Order());
            foreach (string name in local.Tensors.Select(t => t.Name)) Assert.Equal(local.ReadSingle(name), fromHub.ReadSingle(name));
        }
        // Provenance: the repos and the commits they resolved to; the card's base is the Hub ID.
        var inputs = JsonNode.Parse(File.ReadAllText(dir["from-hub/irr-report.json"]))!["inputs"]!;
        Assert.Equal(Base, (string?)inputs["base_hub"]!["repo_id"]);
        Assert.Equal(baseCommit, (string?)inputs["base_hub"]!["commit"]);
        Assert.Equal(loraCommit, (string?)inputs["adapter_hub"]!["commit"]);
        Assert.Contains($"base_model: \"{Base}\"\n", File.ReadAllText(dir["from-hub/README.md"]));

        // Offline from the filled cache, the Hub gone: nothing asked, the same model.
        hub.Log.Clear();
        var offline = new HubClient(new HubSettings(NoRealHub.ClosedEndpoint, null, dir["hub"], Offline: true));
        using (HubClient.Override(offline))
            run = Ok(CliRunner.Run(["realign", "--base", Base, "--adapter", $"{Lora}@{loraCommit}", .. rest, "-o", dir["offline"]]));
        Assert.DoesNotContain("download", run.Err);
        Assert.Empty(hub.Log);
        using (var fromHub = ModelDirectory.Open(dir["from-hub"]))
        using (var fromCache = ModelDirectory.Open(dir["offline"]))
            foreach (string name in fromHub.Tensors.Select(t => t.Name)) Assert.Equal(fromHub.ReadSingle(name), fromCache.ReadSingle(name));
    }

    [Fact]
    public void TokenizeAndChatFormatFetchTheTokenizerNotTheWeights()
    {
        using var dir = new TempDir();
        string aligned = ModelCommandTests.ChatModel(dir, "aligned", seed: 1);
        using var hub = new FakeHubServer();
        hub.Add(Base).Commit(FilesOf(aligned));
        using var client = HubClient.Override(new HubClient(new HubSettings(hub.Url, null, dir["hub"], Offline: false)));
        var local = Ok(CliRunner.Run("chat-format", "--model", aligned, "--user", "hello"));
        var fromHub = Ok(CliRunner.Run("chat-format", "--model", Base, "--user", "hello"));
        Assert.Equal(local.Out, fromHub.Out);
        Assert.Equal(Ok(CliRunner.Run("tokenize", "--model", aligned, "--text", "hello")).Out, Ok(CliRunner.Run("tokenize", "--model", Base, "--text", "hello")).Out);
        Assert.DoesNotContain(hub.Log, r => r.Path.EndsWith(".safetensors", StringComparison.Ordinal) || r.Path.Contains("/cdn/", StringComparison.Ordinal));
        Assert.Contains(hub.Log, r => r.Path.EndsWith("/tokenizer.json", StringComparison.Ordinal));
    }

    [Fact]
    public void AGatedBaseIsOneLineAndWritesNothing()
    {
        using var dir = new TempDir();
        string aligned = ModelCommandTests.ChatModel(dir, "aligned", seed: 1);
        File.WriteAllText(dir["data.jsonl"], """{"instruction": "a", "output": "b"}""" + "\n");
        using var hub = new FakeHubServer();
        var repo = hub.Add(Base);
        repo.Commit(FilesOf(aligned));
        repo.Gated = true;
        using var client = HubClient.Override(new HubClient(new HubSettings(hub.Url, null, dir["hub"], Offline: false)));
        var (code, _, error) = CliRunner.Run("score", "--model", Base, "--data", dir["data.jsonl"], "-o", dir["s.json"]);
        Assert.Equal(2, code);
        Assert.StartsWith($"error: score: model {Base}", error);
        Assert.Contains("gated or private", error);
        Assert.Contains("HF_TOKEN", error);
        Assert.Single(error.TrimEnd().Split('\n'));
        Assert.False(File.Exists(dir["s.json"]));
        Assert.False(Directory.Exists(Path.Combine(dir["hub"], "models--meta-llama--Llama-2-7b-chat-hf", "snapshots")));

        // A misspelt local path is asked of the Hub too (as transformers does); the error says it is no directory here either.
        (code, _, error) = CliRunner.Run("score", "--model", "out/mymodel", "--data", dir["data.jsonl"], "-o", dir["s.json"]);
        Assert.Equal(2, code);
        Assert.StartsWith("error: score: model out/mymodel: no such local directory, and as a Hub repo out/mymodel@main: ", error);
        Assert.Single(error.TrimEnd().Split('\n'));
    }

    [Fact]
    public void AnIrrProcessWithHfHubOfflineReadsTheCacheAndSaysWhyAMissingRepoIsMissing()
    {
        using var dir = new TempDir();
        string aligned = ModelCommandTests.ChatModel(dir, "aligned", seed: 1);
        HubCacheTrees.Add(dir["hub"], Base, aligned, "0123456789abcdef0123456789abcdef01234567");
        var env = new Dictionary<string, string> { ["HF_HUB_OFFLINE"] = "1", ["HF_HUB_CACHE"] = dir["hub"], ["HF_ENDPOINT"] = NoRealHub.ClosedEndpoint };
        var ok = IrrProcess.Run(["inspect", Base], env: env);
        Assert.True(ok.Code == 0, ok.Err);
        var missing = IrrProcess.Run(["inspect", "my-org/absent"], env: env);
        Assert.Equal(2, missing.Code);
        Assert.Equal($"error: my-org/absent@main: no such local directory, and the model repo my-org/absent is not in the Hugging Face cache at {dir["hub"]} (HF_HUB_OFFLINE is set)", missing.Err.TrimEnd());
    }
}
