using System.Text.Json.Nodes;
using Irr.Tests.Cli;

namespace Irr.Tests.Examples;

/// <summary>
/// examples/cluster's sweep scripts (Slurm job array + collect job; Kubernetes Indexed Job + collect Job), run on the
/// sweep tests' tiny world: the sweep they produce equals the one-run sweep (sweep.json and the chosen model).
/// </summary>
public class SweepClusterTests
{
    private static readonly string[] Options = ["--sparsity", "0,0.5", "--resta-gamma", "0.5"];

    // The sweep's options as SWEEP_ARGS (no output, point or collect), and the one-run sweep to compare with.
    private static (string Args, string Whole) World(SweepWorld w)
    {
        string[] args = [.. w.Sweep("UNUSED", Options)[1..]];
        int o = Array.IndexOf(args, "-o");
        string sweepArgs = string.Join(" ", args.Take(o).Concat(args.Skip(o + 2)));
        string whole = w.Dir["whole"];
        SweepCommandTests.Ok(CliRunner.Run(w.Sweep(whole, Options)));
        return (sweepArgs, whole);
    }

    private static void AssertSameSweep(string whole, string sweep)
    {
        Assert.True(JsonNode.DeepEquals(SweepPointTests.Comparable(whole), SweepPointTests.Comparable(sweep)));
        Assert.Equal(File.ReadAllBytes(Path.Combine(whole, "chosen/model.safetensors")), File.ReadAllBytes(Path.Combine(sweep, "chosen/model.safetensors")));
    }

    [Fact]
    public void TheSlurmJobArrayAndCollectJobMakeTheOneRunSweep()
    {
        using var w = new SweepWorld();
        var (args, whole) = World(w);
        var scripts = new ClusterScripts(w.Dir);
        string sweep = w.Dir["cluster-sweep"];
        File.WriteAllText(w.Dir["config.sh"], $"SWEEP_ARGS='{args}'\nSWEEP_DIR='{sweep}'\n" + File.ReadAllText(ClusterScripts.Example("slurm/config.sh")));
        var (code, output) = scripts.Bash(ClusterScripts.Example("slurm/submit-sweep.sh"), null, new Dictionary<string, string> { ["IRR_CONFIG"] = w.Dir["config.sh"] });
        Assert.True(code == 0, output + scripts.SlurmLog());
        // 2 sparsities, 1 RESTA point, θ_A and θ_F: 5 units, run by the fake sbatch in reverse order.
        Assert.Contains($"sweep: job array 1001 (5 units), collect job 1002 -> {sweep}", output);
        Assert.Contains("--array=0-4", File.ReadAllText(w.Dir["slurm-state/log"]));
        Assert.True(File.Exists(Path.Combine(sweep, "sweep.json")), scripts.SlurmLog());
        Assert.Contains("units: 5 done earlier (by earlier runs or --point jobs), 0 computed now", File.ReadAllText(w.Dir["slurm-state/1002.out"]));
        AssertSameSweep(whole, sweep);
    }

    [Fact]
    public void WithAServingEngineEveryModelIsServedByVllmOnAGpuTask()
    {
        using var w = new SweepWorld();
        var scripts = new ClusterScripts(w.Dir);
        const string serve = "vllm serve {model} --served-model-name {name} --port {port}";
        const string serveAdapter = "vllm serve {model} --enable-lora --lora-modules {name}={adapter} --port {port}";
        string[] args = [.. w.Sweep("UNUSED", Options)[1..]];
        int o = Array.IndexOf(args, "-o");
        string sweepArgs = string.Join(" ", args.Take(o).Concat(args.Skip(o + 2)));
        // The reference: one run, with the same engine (the fake vllm on PATH, as the scripts see it).
        string whole = w.Dir["whole"];
        var (code, output) = scripts.Bash(null, $"irr sweep {string.Join(" ", args.Take(o))} -o '{whole}' {string.Join(" ", args.Skip(o + 2))} --engine-serve '{serve}' --engine-serve-adapter '{serveAdapter}'",
            new Dictionary<string, string>());
        Assert.True(code == 0, output);
        Assert.Equal(5, File.ReadAllLines(w.Dir["vllm-starts.txt"]).Length); // 3 points, θ_A and θ_F

        string sweep = w.Dir["cluster-sweep"];
        File.WriteAllText(w.Dir["config.sh"], $"SWEEP_ARGS='{sweepArgs}'\nSWEEP_DIR='{sweep}'\nENGINE_SERVE='{serve}'\n" +
$"ENGINE_SERVE_ADAPTER='{serveAdapter}'\n" + File.ReadAllText(ClusterScripts.Example("slurm/config.sh")));
        (code, output) = scripts.Bash(ClusterScripts.Example("slurm/submit-sweep.sh"), null, new Dictionary<string, string> { ["IRR_CONFIG"] = w.Dir["config.sh"] });
        Assert.True(code == 0, output + scripts.SlurmLog());
        Assert.Contains("--array=0-4 --gres=gpu:1", File.ReadAllText(w.Dir["slurm-state/log"]));
        Assert.Equal(10, File.ReadAllLines(w.Dir["vllm-starts.txt"]).Length); // each model once more, by its array task
        Assert.Contains("fake-engine: serving irr-s0.5", File.ReadAllText(Path.Combine(sweep, "points/irr-s0.5/eval/engine-serve.log")));
        AssertSameSweep(whole, sweep);
    }

    [Fact]
    public void TheKubernetesIndexedJobAndCollectJobMakeTheOneRunSweep()
    {
        using var w = new SweepWorld();
        var (args, whole) = World(w);
        var scripts = new ClusterScripts(w.Dir);
        var job = ClusterScripts.ReadJob(ClusterScripts.Example("k8s/sweep-job.yaml"));
        var collect = ClusterScripts.ReadJob(ClusterScripts.Example("k8s/sweep-collect-job.yaml"));
        Assert.Equal("Indexed", job.CompletionMode);
        Assert.Equal(job.Env["SWEEP_ARGS"], collect.Env["SWEEP_ARGS"]);
        // The manifest's completions are its sweep's units: one per sparsity, plus θ_A and θ_F.
        string sparsity = job.Env["SWEEP_ARGS"].Split(' ').SkipWhile(a => a != "--sparsity").ElementAt(1);
        Assert.Equal(sparsity.Split(',').Length + 2, job.Completions);

        string sweep = w.Dir["cluster-sweep"];
        var env = new Dictionary<string, string> { ["SWEEP_ARGS"] = args, ["SWEEP_DIR"] = sweep };
        var (code, listed) = scripts.Bash(null, "irr sweep $SWEEP_ARGS --output \"$SWEEP_DIR\" --list-points", env);
        Assert.True(code == 0, listed);
        int units = int.Parse(listed.Split('\n').Single(l => l.StartsWith("units: "))["units: ".Length..]);
        scripts.RunJob(job with { Completions = units }, env);
        scripts.RunJob(collect, env);
        AssertSameSweep(whole, sweep);
    }
}
