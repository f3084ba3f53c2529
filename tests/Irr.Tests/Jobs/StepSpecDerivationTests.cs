using Irr.Jobs;

namespace Irr.Tests.Jobs;

/// <summary>
/// The wiring irr run derives from the jobs' declarations (issue 25) against the table it used before, written by hand
/// (StepSpec.All until issue 25, copied here as the reference).
/// </summary>
public class StepSpecDerivationTests
{
    private static IReadOnlyList<StepSpec> Before { get; } =
[
        new("safety-vector", [new("aligned"), new("unaligned"), new("unaligned-adapter")], ".safetensors", ArtifactKind.SafetyVector),
        new("fisher", [new("model"), new("data")], ".safetensors", ArtifactKind.Fisher),
        new("realign", [new("base"), new("finetuned"), new("adapter"), new("safety-vector", From: ArtifactKind.SafetyVector),
            new("fisher", From: ArtifactKind.Fisher), new("calibration"), new("removal-counts")], Produces: ArtifactKind.Model) { NoOutputWith = "dry-run" },
        new("baseline safelora", [new("base"), new("adapter"), new("safety-vector", From: ArtifactKind.SafetyVector)]), // writes an adapter: not wired by kind
        new("sweep", [new("base"), new("finetuned"), new("adapter"), new("safety-vector", From: ArtifactKind.SafetyVector), new("fisher", From: ArtifactKind.Fisher),
            new("calibration"), new("harmful-val"), new("task-val"), new("refusal-markers"), new("safelora-vector"), new("judge-cache", IsInput: false)], Produces: ArtifactKind.Model)
            { ProducedInside = "chosen" },
        new("train", [new("model"), new("data")], Produces: ArtifactKind.Model) { ProducesOnlyWith = "full" },
        new("baseline resta", [new("base"), new("finetuned"), new("adapter"), new("safety-vector", From: ArtifactKind.SafetyVector)], Produces: ArtifactKind.Model),
        // Issue 28's baselines.
        new("baseline antidote", [new("base"), new("finetuned"), new("adapter"), new("data")], Produces: ArtifactKind.Model),
        new("baseline interpolate", [new("base"), new("finetuned"), new("adapter")], Produces: ArtifactKind.Model),
        new("generate", [new("model", From: ArtifactKind.Model), new("adapter"), new("prompts")], ".jsonl"),
        new("score", [new("model"), new("adapter"), new("data")], ".json"),
        new("eval safety", [new("model", From: ArtifactKind.Model, NotNeededWith: "responses"), new("adapter"), new("prompts"), new("responses"),
            new("refusal-markers"), new("attack-file"), new("judge-cache", IsInput: false)], Produces: ArtifactKind.EvalRun) { SharesOutput = true },
        new("eval task", [new("model", From: ArtifactKind.Model), new("adapter"), new("data")], Produces: ArtifactKind.EvalRun) { SharesOutput = true },
        new("eval ppl", [new("model", From: ArtifactKind.Model), new("adapter"), new("data")]) { SharesOutput = true },
        new("report", [new("runs", From: ArtifactKind.EvalRun, Many: true)]) { Positional = "runs" },
        // Not wired by kind: a converted state dict may be a safety vector or a Fisher, and a converted model is mostly a base or
        // fine-tune, which are never wired; later steps name the output (OUTPUT/convert.safetensors, OUTPUT/convert).
        new("convert", [new("input")]) { Positional = "input", FileInputOutputExtension = ".safetensors" },
    ];

    private static readonly Dictionary<string, PathOption[]> Added = new()
    {
        ["sweep"] = [new("engine-cache", IsInput: false), new("antidote-data")],
        ["generate"] = [new("engine-cache", IsInput: false)],
        ["eval safety"] = [new("engine-cache", IsInput: false)],
        ["eval task"] = [new("engine-cache", IsInput: false)],
    };

    [Fact]
    public void TheDerivedWiringIsTheHandWrittenTable()
    {
        Assert.Equal(Before.Select(s => s.Command), StepSpec.All.Select(s => s.Command));
        foreach (var (before, now) in Before.Zip(StepSpec.All))
        {
            // The same path options, in the job's declaration order, plus one the table missed: a serving engine's answer
            // cache is a path a recipe resolves against its directory, as the judge's cache always was.
            var expected = before.Paths.Concat(Added.GetValueOrDefault(now.Command, [])).OrderBy(p => p.Key, StringComparer.Ordinal);
            // (Issue 27's Hub flags are not the table's: they are checked below.)
            var paths = now.Paths.Select(p => p with { HubRepo = false, HubFile = false }).OrderBy(p => p.Key, StringComparer.Ordinal);
            Assert.True(expected.SequenceEqual(paths),
                $"{now.Command}: paths {string.Join(", ", now.Paths)} differ from {string.Join(", ", before.Paths)}");
            Assert.Equal((before.OutputExtension, before.Produces, before.ProducesOnlyWith, before.NoOutputWith, before.SharesOutput, before.ProducedInside, before.Positional, before.FileInputOutputExtension),
                (now.OutputExtension, now.Produces, now.ProducesOnlyWith, now.NoOutputWith, now.SharesOutput, now.ProducedInside, now.Positional, now.FileInputOutputExtension));
        }
    }

    [Fact]
    public void ModelOptionsTakeHubRepoIdsAndDataOptionsHubFiles()
    {
        string[] models = ["aligned", "unaligned", "unaligned-adapter", "model", "base", "finetuned", "adapter", "input"];
        string[] data = ["data", "calibration", "harmful-val", "task-val", "prompts", "responses", "antidote-data"];
        foreach (var spec in StepSpec.All)
            foreach (var path in spec.Paths)
            {
                Assert.True(path.HubRepo == models.Contains(path.Key), $"{spec.Command}: {path.Key} HubRepo is {path.HubRepo}");
                Assert.True(path.HubFile == data.Contains(path.Key), $"{spec.Command}: {path.Key} HubFile is {path.HubFile}");
            }
    }
}
