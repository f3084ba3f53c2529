using System.Text.Json.Nodes;
using Irr.Tests.IO;

namespace Irr.Tests.Cli;

/// <summary>
/// Base models and completion-style data: every command that formats records or prompts takes --no-chat-template (a
/// recipe step too), and runs on a model without a chat template; without the flag such a model is refused, before any
/// work, by a line that names the flag.
/// </summary>
public class NoChatTemplateTests
{
    // The sweep world's models, their chat template removed (the safety vector and Fisher were made before).
    private static SweepWorld TemplateLess()
    {
        var w = new SweepWorld();
        foreach (string model in new[] { w.Aligned, w.Finetuned })
        {
            string path = Path.Combine(model, "tokenizer_config.json");
            var config = JsonNode.Parse(File.ReadAllText(path))!.AsObject();
            config.Remove("chat_template");
            File.WriteAllText(path, config.ToJsonString());
        }
        return w;
    }

    private static string[][] Commands(SweepWorld w) =>
    [
        ["score", "--model", w.Aligned, "--data", w.Calibration, "-o", w.Dir["score.json"]],
        ["generate", "--model", w.Aligned, "--prompts", w.Harmful, "--max-new-tokens", "2", "-o", w.Dir["gen.jsonl"]],
        ["train", "--model", w.Aligned, "--data", w.Calibration, "--lora", "--rank", "2", "--targets", "q_proj", "--epochs", "1", "-o", w.Dir["adapter"]],
        ["fisher", "--model", w.Aligned, "--data", w.Harmful, "--modules", "q_proj,down_proj", "-o", w.Dir["f2.safetensors"]],
        ["realign", .. w.RealignArgs, "--sparsity", "0.5", "-o", w.Dir["realigned"]],
        ["eval", "safety", "--model", w.Aligned, "--prompts", w.Harmful, "--max-new-tokens", "2", "-o", w.Dir["safety"]],
        ["eval", "task", "--model", w.Aligned, "--data", w.Task, "--metric", "exact", "--max-new-tokens", "2", "-o", w.Dir["task"]],
        w.Sweep(w.Dir["sweep"], "--sparsity", "0.5"),
    ];

    [Fact]
    public void EveryCommandRefusesATemplateLessModelNamingTheFlagAndRunsWithIt()
    {
        using var w = TemplateLess();
        foreach (var args in Commands(w))
        {
            string command = string.Join(' ', args.Take(args[0] == "eval" ? 2 : 1));
            var (code, _, err) = CliRunner.Run(args);
            Assert.True(code == 2, $"{command}: exit {code}\n{err}");
            Assert.Contains("--no-chat-template", err);
            (code, _, err) = CliRunner.Run([.. args, "--no-chat-template"]);
            Assert.True(code == 0, $"{command} --no-chat-template: {err}");
        }
        // The records' text as is: "say 0" + "the answer 0" (no separator), and the generated text after the prompt's.
        var score = JsonNode.Parse(File.ReadAllText(w.Dir["score.json"]))!["scores"]![0]!;
        var ids = score["input_ids"]!.AsArray().Select(n => (int)n!).ToList();
        // Byte-level ids are the bytes, "he" = 257 (the pre-tokenizer's words: "compute", " 0", "the", " answer", " 0"); <|end|> = 260.
        Assert.Equal([.. "compute 0t".Select(c => (int)c), 257, .. " answer 0".Select(c => (int)c), 260], ids);
    }

    [Fact]
    public void ARecipeStepTakesTheFlag()
    {
        using var w = TemplateLess();
        File.WriteAllText(w.Dir["recipe.yaml"], $"""
            output: out
            steps:
              - generate: {"{"}model: {w.Aligned}, prompts: {w.Harmful}, max-new-tokens: 2, no-chat-template: true{"}"}
              - score: {"{"}model: {w.Aligned}, data: {w.Calibration}, no-chat-template: true{"}"}
            """);
        var (code, _, err) = CliRunner.Run("run", w.Dir["recipe.yaml"]);
        Assert.True(code == 0, err);
    }

    [Fact]
    public void AnEmptyPromptNeedsATokenizerThatAddsBos()
    {
        // The byte-level tokenizer adds no BOS: an empty prompt has no token to start from (stories260K's starts from BOS, RealModelTests).
        using var w = TemplateLess();
        File.WriteAllText(w.Dir["empty.json"], """["hi", ""]""");
        var (code, _, err) = CliRunner.Run("generate", "--model", w.Aligned, "--prompts", w.Dir["empty.json"], "--no-chat-template", "-o", w.Dir["out.jsonl"]);
        Assert.Equal(2, code);
        Assert.Equal("error: prompt 1: empty, and the tokenizer adds no BOS, so there is no token to generate from", err.Trim());
        Assert.False(File.Exists(w.Dir["out.jsonl"]));
        // Without the flag an empty prompt is refused as before, naming the record.
        (code, _, err) = CliRunner.Run("generate", "--model", w.Aligned, "--prompts", w.Dir["empty.json"], "-o", w.Dir["out.jsonl"]);
        Assert.Equal(2, code);
        Assert.Contains("empty prompt", err);
    }
}
