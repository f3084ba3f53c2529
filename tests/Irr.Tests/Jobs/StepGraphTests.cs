using Irr.Jobs;
using Irr.Tests.IO;

namespace Irr.Tests.Jobs;

/// <summary>The step graph: default outputs, the wiring table, dependencies and the run order.</summary>
public class StepGraphTests
{
    private static StepGraph Plan(TempDir dir, string steps)
    {
        Directory.CreateDirectory(dir["m"]);
        foreach (string file in new[] { "d.jsonl", "p.json", "r.jsonl" }) File.WriteAllText(dir[file], "[]");
        return StepGraph.Plan(Recipe.Parse("output: out\nsteps:\n" + steps, dir["recipe.yaml"]));
    }

    // The first two steps of most graphs here.
    private const string VectorAndFisher = """
          - safety-vector: {aligned: m, unaligned: m}
          - fisher: {model: m, data: d.jsonl}

        """;

    private static string[] Option(PlannedStep step, string key) => step.Options.Single(o => o.Key == key).Values.ToArray();

    [Fact]
    public void OutputsDefaultToTheRunDirectoryByStepId()
    {
        using var dir = new TempDir();
        var graph = Plan(dir, VectorAndFisher + """
              - realign: {base: m, finetuned: m, calibration: d.jsonl}
              - generate: {prompts: p.json}
              - score: {model: m, data: d.jsonl}
              - eval task: {data: d.jsonl, metric: exact, output: evals/x}
              - train: {model: m, data: d.jsonl, lora: true}
            """);
        Assert.Equal([dir["out/safety-vector.safetensors"], dir["out/fisher.safetensors"], dir["out/realign"], dir["out/generate.jsonl"],
            dir["out/score.json"], dir["evals/x"], dir["out/train"]], graph.Steps.Select(s => s.Output));
        Assert.Equal([dir["out/realign"]], Option(graph.Steps[2], "output"));
        Assert.Equal([dir["m"], dir["d.jsonl"]], graph.Steps[1].Inputs);
    }

    [Fact]
    public void OmittedInputsAreWiredFromTheLatestEarlierProducer()
    {
        using var dir = new TempDir();
        var graph = Plan(dir, VectorAndFisher + """
              - fisher: {model: m, data: r.jsonl}
              - train: {model: m, data: d.jsonl, full: true}
              - eval safety: {prompts: [p.json]}
              - realign: {base: m, finetuned: m, calibration: d.jsonl}
              - realign: {base: m, finetuned: m, dry-run: true}
              - train: {model: m, data: d.jsonl, lora: true}
              - eval task: {data: d.jsonl, metric: exact}
              - eval safety: {responses: r.jsonl, output: out/eval-task}
              - eval ppl: {data: d.jsonl}
              - report: {}
            """);
        var s = graph.Steps.ToDictionary(x => x.Id);
        Assert.Equal([dir["out/fisher-2.safetensors"]], Option(s["realign"], "fisher"));
        Assert.Equal(["fisher-2"], s["realign"].Wired["fisher"]);
        Assert.Equal(["safety-vector"], s["realign"].Wired["safety-vector"]);
        Assert.Equal([0, 2], s["realign"].DependsOn.Select(d => d.Producer).Order());
        Assert.Equal([4, 8, 9], s["report"].DependsOn.Select(d => d.Producer).Order()); // eval-safety-2 writes into eval-task's directory
        Assert.Equal(["train"], s["eval-safety"].Wired["model"]); // train with full writes a model
        Assert.Equal(["realign"], s["eval-task"].Wired["model"]); // not the dry run, nor the LoRA adapter
        Assert.Null(s["realign-2"].Output);
        Assert.False(s["eval-safety-2"].Wired.ContainsKey("model")); // responses need no model
        Assert.DoesNotContain(s["eval-safety-2"].Options, o => o.Key == "model");
        // Every earlier safety or task evaluation, each run directory once (eval-safety-2 shares eval-task's); not perplexity.
        Assert.Equal([dir["out/eval-safety"], dir["out/eval-task"]], Option(s["report"], "runs"));
        Assert.Equal(["eval-safety", "eval-task", "eval-safety-2"], s["report"].Wired["runs"]);
        Assert.All(s["report"].Options, o => Assert.Equal(14, o.Line)); // wired options carry the step's line
    }

    [Fact]
    public void AStepReadingALaterStepsOutputRunsAfterIt()
    {
        using var dir = new TempDir();
        var graph = Plan(dir, """
              - eval safety: {responses: out/generate.jsonl}
              - fisher: {model: m, data: d.jsonl}
              - generate: {model: m, prompts: p.json}
              - eval task: {model: m, data: out/generate.jsonl, metric: exact}
            """);
        Assert.Equal(["fisher", "generate", "eval-safety", "eval-task"], graph.Order.Select(s => s.Id));
        var dependency = Assert.Single(graph.Steps[0].DependsOn);
        Assert.Equal((2, "responses", dir["out/generate.jsonl"]), (dependency.Producer, dependency.Via.Key, dependency.Path));
        Assert.Equal(3, dependency.Via.Line);
    }

    [Fact]
    public void ConvertWritesAFileForAFileAndADirectoryForADirectoryWhichLaterStepsNameExplicitly()
    {
        using var dir = new TempDir();
        File.WriteAllText(dir["sv.pt"], "");
        Directory.CreateDirectory(dir["torch-model"]);
        var graph = Plan(dir, """
              - realign: {base: out/convert, finetuned: m, safety-vector: out/convert-2.safetensors, fisher: f.safetensors, calibration: d.jsonl}
              - convert: {input: torch-model}
              - convert: {input: sv.pt}
              - convert: {input: sv.pt, output: fisher.safetensors}
              - eval task: {data: d.jsonl, metric: exact, model: out/convert}
              - fisher: {model: out/convert, data: d.jsonl, output: f.safetensors}
            """);
        var s = graph.Steps.ToDictionary(x => x.Id);
        Assert.Equal(dir["out/convert"], s["convert"].Output); // a model directory gives a directory
        Assert.Equal(dir["out/convert-2.safetensors"], s["convert-2"].Output); // a state dict file gives one .safetensors file
        Assert.Equal(dir["fisher.safetensors"], s["convert-3"].Output);
        Assert.Equal(["convert", "--output", dir["out/convert-2.safetensors"], "--", dir["sv.pt"]],
            RecipeSteps.Arguments(s["convert-2"], RecipeSteps.SchemaOf("convert")!));
        Assert.Equal([dir["sv.pt"]], s["convert-2"].Inputs);
        // Nothing is wired from a convert step; its outputs named explicitly make dependencies, and the order follows them.
        Assert.Empty(s["convert"].Wired);
        Assert.Equal([1, 2, 5], s["realign"].DependsOn.Select(d => d.Producer).Order());
        Assert.Equal([1], s["eval-task"].DependsOn.Select(d => d.Producer));
        Assert.Equal(["convert", "convert-2", "convert-3", "eval-task", "fisher", "realign"], graph.Order.Select(x => x.Id));
        // With no earlier model producer, eval task's model is not wired from the converted model: it must be named.
        var e = Assert.Throws<IrrException>(() => Plan(dir, "  - convert: {input: torch-model}\n  - eval task: {data: d.jsonl, metric: exact}\n"));
        Assert.Contains("eval task: missing input 'model'", e.Message);
    }

    [Fact]
    public void AnInputInsideAnOutputDirectoryDependsOnItsStep()
    {
        using var dir = new TempDir();
        var graph = Plan(dir, """
              - eval safety: {model: m, prompts: [p.json], judge-cache: cache.jsonl}
              - eval safety: {responses: out/eval-safety/responses.jsonl}
            """);
        Assert.Equal([0], graph.Steps[1].DependsOn.Select(d => d.Producer));
        Assert.Equal([dir["cache.jsonl"]], Option(graph.Steps[0], "judge-cache")); // resolved, but not an input
        Assert.DoesNotContain(dir["cache.jsonl"], graph.Steps[0].Inputs);
        Assert.True(StepGraph.SameOrInside("/a/b/c", "/a/b"));
        Assert.True(StepGraph.SameOrInside("/a/b/", "/a/b"));
        Assert.False(StepGraph.SameOrInside("/a/bc", "/a/b"));
    }

    [Fact]
    public void ThreeStepCyclesAreFoundAndNamed()
    {
        using var dir = new TempDir();
        var e = Assert.Throws<IrrException>(() => Plan(dir, """
              - fisher: {model: m, data: out/generate.jsonl}
              - realign: {base: m, finetuned: m, calibration: d.jsonl, safety-vector: out/fisher.safetensors}
              - generate: {model: out/realign, prompts: p.json}
            """));
        Assert.Equal($"{dir["recipe.yaml"]} line 3: fisher: data {dir["out/generate.jsonl"]} is written by generate (line 5), " +
            "a later step that depends on this one (cycle: fisher → generate → realign → fisher)", e.Message);
    }
}
