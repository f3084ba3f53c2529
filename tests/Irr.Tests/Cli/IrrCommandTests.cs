using System.Text.Json.Nodes;
using Irr.IO;
using Irr.Model;
using Irr.Tests.IO;

namespace Irr.Tests.Cli;

/// <summary>irr safety-vector, fisher and realign end to end on tiny chat models.</summary>
public class IrrCommandTests
{
    internal static string Records(TempDir dir, string name, int count, string prefix)
    {
        var lines = Enumerable.Range(0, count).Select(i => new JsonObject { ["instruction"] = $"{prefix} {i}", ["output"] = $"the answer {i}" }.ToJsonString());
        File.WriteAllLines(dir[name], lines);
        return dir[name];
    }

    private static void Ok((int Code, string Out, string Err) r) => Assert.True(r.Code == 0, r.Err);

    [Fact]
    public void TheThreeStepsRepairAModel()
    {
        using var dir = new TempDir();
        var (aligned, unaligned, finetuned) = ModelCommandTests.ThreeModels(dir);
        string safety = Records(dir, "safety.jsonl", 5, "how do I");
        string task = Records(dir, "task.jsonl", 6, "compute");

        Ok(CliRunner.Run("safety-vector", "--aligned", aligned, "--unaligned", unaligned, "--modules", "q_proj,v_proj,down_proj", "-o", dir["v.safetensors"]));
        Ok(CliRunner.Run("fisher", "--model", aligned, "--data", safety, "--modules", "q_proj,v_proj,down_proj", "--batch-size", "2", "-o", dir["f.safetensors"]));
        using (var f = SafetensorsFile.Open(dir["f.safetensors"]))
        {
            Assert.Equal(6, f.Tensors.Count);
            Assert.Equal("3", f.Metadata["batches"]);
        }

        var dry = CliRunner.Run("realign", "--base", aligned, "--finetuned", finetuned, "--safety-vector", dir["v.safetensors"], "--fisher", dir["f.safetensors"],
            "--modules", "q_proj,v_proj,down_proj", "--dry-run");
        Ok(dry);
        Assert.Contains("total", dry.Out);
        Assert.Contains("down_proj", dry.Out);

        var run = CliRunner.Run("realign", "--base", aligned, "--finetuned", finetuned, "--safety-vector", dir["v.safetensors"], "--fisher", dir["f.safetensors"],
            "--calibration", task, "--modules", "q_proj,v_proj,down_proj", "--blocksize", "8", "--nsamples", "4", "-o", dir["repaired"]);
        Ok(run);
        using var repaired = ModelDirectory.Open(dir["repaired"]);
        Assert.Equal(TensorDType.BF16, repaired.Tensors.First().DType);
        Assert.True(File.Exists(Path.Combine(dir["repaired"], "tokenizer.json")));
        var report = JsonNode.Parse(File.ReadAllText(Path.Combine(dir["repaired"], "irr-report.json")))!;
        Assert.Equal(2, report["layers"]!.AsArray().Count);
        Assert.Equal(3 * 2, (int)report["totals"]!["modules"]!);
        Assert.Equal("irr", (string)report["options"]!["method"]!);
        Assert.Equal(Path.GetFullPath(finetuned), (string)report["inputs"]!["finetuned"]!);
        var q0 = report["layers"]![0]!["modules"]![0]!;
        Assert.Equal("q_proj", (string)q0["module"]!);
        Assert.Equal(256, (long)q0["parameters"]!);
        Assert.True((long)q0["removed"]! > 0);
        Assert.True((double)q0["damping"]! > 0);
        foreach (string phase in new[] { "load", "forward", "hessian", "cholesky", "obs", "write" }) Assert.NotNull(report["phase_seconds"]![phase]);
        // Non-target weights are θ_F's; target weights changed.
        using var theta = ModelDirectory.Open(finetuned);
        Assert.Equal(theta.ReadSingle("model.layers.1.mlp.gate_proj.weight"), repaired.ReadSingle("model.layers.1.mlp.gate_proj.weight"));
        Assert.NotEqual(theta.ReadSingle("model.layers.1.self_attn.v_proj.weight"), repaired.ReadSingle("model.layers.1.self_attn.v_proj.weight"));
        Assert.Contains("total", run.Out);
    }

    [Fact]
    public void AnAdapterFineTuneIsRepairedOnItsTargets()
    {
        using var dir = new TempDir();
        string aligned = ModelCommandTests.ChatModel(dir, "aligned", seed: 1);
        string task = Records(dir, "task.jsonl", 4, "compute");
        Ok(CliRunner.Run("train", "--model", aligned, "--data", task, "--lora", "--rank", "2", "--targets", "q_proj,v_proj", "--epochs", "2", "--lr", "1e-2", "-o", dir["adapter"]));
        Ok(CliRunner.Run("train", "--model", aligned, "--data", Records(dir, "harm.jsonl", 4, "harm"), "--lora", "--rank", "2", "--targets", "q_proj,v_proj", "--epochs", "2", "--lr", "1e-2", "--seed", "7", "-o", dir["unaligned"]));
        Ok(CliRunner.Run("safety-vector", "--aligned", aligned, "--unaligned-adapter", dir["unaligned"], "--modules", "q_proj,v_proj", "-o", dir["v.safetensors"]));
        Ok(CliRunner.Run("fisher", "--model", aligned, "--data", task, "--modules", "q_proj,v_proj", "-o", dir["f.safetensors"]));
        var run = CliRunner.Run("realign", "--base", aligned, "--adapter", dir["adapter"], "--safety-vector", dir["v.safetensors"], "--fisher", dir["f.safetensors"],
            "--calibration", task, "--dtype", "f32", "-o", dir["repaired"]);
        Ok(run);
        var report = JsonNode.Parse(File.ReadAllText(Path.Combine(dir["repaired"], "irr-report.json")))!;
        Assert.Equal(["q_proj", "v_proj"], report["options"]!["modules"]!.AsArray().Select(x => (string)x!));
        using var repaired = ModelDirectory.Open(dir["repaired"]);
        Assert.Equal(TensorDType.F32, repaired.Config.TorchDType);
        Assert.Equal(TensorDType.F32, repaired.Info("model.embed_tokens.weight").DType);
    }

    [Fact]
    public void BadRealignInputsExitWithTwoAndSayWhy()
    {
        using var dir = new TempDir();
        string aligned = ModelCommandTests.ChatModel(dir, "aligned", seed: 1);
        string finetuned = ModelCommandTests.ChatModel(dir, "finetuned", seed: 3);
        string task = Records(dir, "task.jsonl", 2, "x");
        Ok(CliRunner.Run("safety-vector", "--aligned", aligned, "--unaligned", finetuned, "--modules", "q_proj", "-o", dir["v.safetensors"]));
        var (code, _, error) = CliRunner.Run("realign", "--base", aligned, "--finetuned", finetuned, "--safety-vector", dir["v.safetensors"], "--fisher", dir["v.safetensors"],
            "--calibration", task, "-o", dir["out"]);
        Assert.Equal(2, code);
        Assert.Contains("lacks 12 target weights", error); // all seven modules by default, q_proj given: 6 × 2 layers missing
        Assert.False(Directory.Exists(dir["out"]));
        (code, _, error) = CliRunner.Run("realign", "--base", aligned, "--finetuned", finetuned, "--safety-vector", dir["v.safetensors"], "--fisher", dir["v.safetensors"],
            "--modules", "q_proj", "--calibration", task, "-o", aligned);
        Assert.Equal(2, code);
        Assert.Contains("refusing to write into the input model directory", error);
        (code, _, _) = CliRunner.Run("realign", "--base", aligned, "--safety-vector", dir["v.safetensors"], "--fisher", dir["v.safetensors"], "-o", dir["out"]);
        Assert.Equal(2, code); // neither --finetuned nor --adapter: an option error, as every value the job's Validate refuses
        (code, _, error) = CliRunner.Run("realign", "--base", aligned, "--finetuned", finetuned, "--safety-vector", dir["v.safetensors"], "--fisher", dir["v.safetensors"],
            "--modules", "q_proj", "--method", "magic", "--dry-run");
        Assert.Equal(2, code);
        Assert.Contains("method must be irr, irr-more, fisher-only or random-at-count, not 'magic'", error);
    }
}
