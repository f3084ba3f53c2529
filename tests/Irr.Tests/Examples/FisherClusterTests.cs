using Irr.IO;
using Irr.Tests.Cli;
using Irr.Tests.IO;

namespace Irr.Tests.Examples;

/// <summary>
/// examples/cluster's Fisher scripts (Slurm job array + merge job; Kubernetes Indexed Job + merge Job), run on a tiny
/// model: the Fisher they produce equals the unsharded `irr fisher` within the sharded merge's 1e-6 relative tolerance.
/// </summary>
public class FisherClusterTests
{
    private const string Modules = "q_proj,down_proj";

    private static (string Model, string Data, string Reference) World(TempDir dir)
    {
        string model = ModelCommandTests.ChatModel(dir, "aligned");
        string data = IrrCommandTests.Records(dir, "refusals.jsonl", 7, "how do I"); // 4 batches of 2
        string reference = dir["unsharded.safetensors"];
        var r = CliRunner.Run("fisher", "--model", model, "--data", data, "--modules", Modules, "--batch-size", "2", "--max-length", "64", "-o", reference);
        Assert.True(r.Code == 0, r.Err);
        return (model, data, reference);
    }

    private static void AssertSameFisher(string expected, string actual)
    {
        using var a = SafetensorsFile.Open(expected);
        using var b = SafetensorsFile.Open(actual);
        Assert.Equal(a.Tensors.Select(t => t.ToString()), b.Tensors.Select(t => t.ToString()));
        Assert.Equal(a.Metadata.OrderBy(kv => kv.Key), b.Metadata.OrderBy(kv => kv.Key));
        foreach (var t in a.Tensors)
        {
            float[] x = a.ReadSingle(t.Name), y = b.ReadSingle(t.Name);
            for (int i = 0; i < x.Length; i++)
                Assert.True(Math.Abs(x[i] - y[i]) <= 1e-6 * Math.Max(Math.Abs(x[i]), Math.Abs(y[i])) + 1e-30, $"{t.Name}[{i}]: {x[i]} vs {y[i]}");
        }
    }

    [Fact]
    public void TheSlurmJobArrayAndMergeJobMakeTheUnshardedFisher()
    {
        using var dir = new TempDir();
        var (model, data, reference) = World(dir);
        var scripts = new ClusterScripts(dir);
        string work = dir["work"];
        // config.sh as a user edits it, for the tiny model: 3 shards of 4 batches.
        File.WriteAllText(dir["config.sh"], File.ReadAllText(ClusterScripts.Example("slurm/config.sh"))
            .Replace("$HOME/models/llama-2-7b-chat", model).Replace("$HOME/data/refusals.jsonl", data)
            .Replace("q_proj,v_proj}", Modules + "}").Replace("BATCH_SIZE:=8", "BATCH_SIZE:=2").Replace("MAX_LENGTH:=512", "MAX_LENGTH:=64")
            .Replace("SHARDS:=8", "SHARDS:=3").Replace("$HOME/irr-work", work));
        var (code, output) = scripts.Bash(ClusterScripts.Example("slurm/submit-fisher.sh"), null, new Dictionary<string, string> { ["IRR_CONFIG"] = dir["config.sh"] });
        Assert.True(code == 0, output + scripts.SlurmLog());
        Assert.Contains($"Fisher: job array 1001 (3 shards), merge job 1002 -> {work}/fisher.safetensors", output);
        string log = File.ReadAllText(dir["slurm-state/log"]);
        Assert.Contains("--array=0-2", log);
        Assert.Contains("--dependency=afterok:1001", log);
        Assert.Equal(3, Directory.GetFiles(Path.Combine(work, "fisher", "of-3"), "part*.safetensors").Length);
        Assert.True(File.Exists(Path.Combine(work, "fisher.safetensors")), scripts.SlurmLog());
        AssertSameFisher(reference, Path.Combine(work, "fisher.safetensors"));
    }

    [Fact]
    public void TheKubernetesIndexedJobAndMergeJobMakeTheUnshardedFisher()
    {
        using var dir = new TempDir();
        var (model, data, reference) = World(dir);
        var scripts = new ClusterScripts(dir);
        var job = ClusterScripts.ReadJob(ClusterScripts.Example("k8s/fisher-job.yaml"));
        var merge = ClusterScripts.ReadJob(ClusterScripts.Example("k8s/fisher-merge-job.yaml"));
        Assert.Equal("Indexed", job.CompletionMode);
        Assert.Equal(job.Completions.ToString(), job.Env["SHARDS"]); // one pod per shard
        string work = dir["work"];
        // The manifest's pods, as 3 shards on the tiny model (what a user changes: completions, SHARDS, paths).
        scripts.RunJob(job with { Completions = 3 }, new Dictionary<string, string>
        {
            ["WORK"] = work, ["MODEL"] = model, ["SAFETY_DATA"] = data, ["MODULES"] = Modules, ["BATCH_SIZE"] = "2", ["MAX_LENGTH"] = "64", ["SHARDS"] = "3",
        });
        Assert.Equal(job.Env["SHARDS"], merge.Env["SHARDS"]);
        scripts.RunJob(merge, new Dictionary<string, string> { ["WORK"] = work, ["SHARDS"] = "3" });
        AssertSameFisher(reference, Path.Combine(work, "fisher.safetensors"));
    }
}
