using Irr.Demo;
using Irr.Jobs;
using Irr.Tests.Cli;

namespace Irr.Tests.Demo;

/// <summary>
/// The options of <c>irr demo</c> and <c>irr demo pretrain</c> as their jobs declare them (DemoJob.Options.cs,
/// PretrainOptions): what the command line binds, checked against the presets and values written out by hand.
/// </summary>
public class DemoJobOptionsTests
{
    private static Dictionary<string, IReadOnlyList<string>> Given(params (string Key, string Value)[] options) =>
        options.ToDictionary(o => o.Key, o => (IReadOnlyList<string>)[o.Value]);

    [Fact]
    public void QuickSeedAndBaseSelectTheSettings()
    {
        var job = JobSchema.Of<DemoJob>().Bind<DemoJob>(Given(("quick", "true"), ("seed", "7"), ("base", "b"), ("output", "o")));
        Assert.Equal("quick", job.Options.Mode);
        Assert.Equal("b", job.Options.BaseModel);
        Assert.Equal([0, 0.2, 0.4, 0.7, 0.96, 0.99], job.Options.SweepSparsities); // the quick preset's sweep
        Assert.Equal(7, job.Options.Seed);
        Assert.Equal(24, job.Options.MaxNewTokens); // the quick preset's, not the default 32
        Assert.Equal("o", job.OutputPath);

        var defaults = JobSchema.Of<DemoJob>().Bind<DemoJob>(Given());
        Assert.Equal(("default", 1, 32, null, "irr-demo"),
            (defaults.Options.Mode, defaults.Options.Seed, defaults.Options.MaxNewTokens, defaults.Options.BaseModel, defaults.OutputPath));
    }

    [Fact]
    public void NoModelCardIsAnOptionOfTheDemoAndItsPretraining()
    {
        Assert.True(JobSchema.Of<DemoJob>().Bind<DemoJob>(Given()).Card.ModelCard);
        Assert.False(JobSchema.Of<DemoJob>().Bind<DemoJob>(Given(("no-model-card", "true"))).Card.ModelCard);
        Assert.True(JobSchema.Of<PretrainJob>().Bind<PretrainJob>(Given(("output", "o"))).Card.ModelCard);
        Assert.False(JobSchema.Of<PretrainJob>().Bind<PretrainJob>(Given(("output", "o"), ("no-model-card", "true"))).Card.ModelCard);
    }

    [Fact]
    public void TheSweepRuleReachesTheDemosSweeps()
    {
        Assert.Equal("default", JobSchema.Of<DemoJob>().Bind<DemoJob>(Given()).Options.SweepRule);
        var job = JobSchema.Of<DemoJob>().Bind<DemoJob>(Given(("quick", "true"), ("sweep-rule", "conservative")));
        Assert.Equal(("quick", "conservative"), (job.Options.Mode, job.Options.SweepRule));
        // An unknown rule is refused before any work (not when the first sweep starts, after the training runs).
        var refused = CliRunner.Run("demo", "--quick", "--sweep-rule", "strict", "-o", Path.Combine(Path.GetTempPath(), "irr-never-" + Guid.NewGuid().ToString("N")));
        Assert.Equal(2, refused.Code);
        Assert.Equal("error: demo: sweep-rule must be default or conservative, not 'strict'", refused.Err.Trim());
    }

    [Fact]
    public void SettingsGivenAsAnObjectAreKept()
    {
        var mine = DemoOptions.Quick(3) with { MaxNewTokens = 5 };
        Assert.Same(mine, new DemoJob { Options = mine }.Options);
    }

    [Fact]
    public void PretrainBindsItsSizesAndKeepsTheOtherDefaults()
    {
        var job = JobSchema.Of<PretrainJob>().Bind<PretrainJob>(Given(("output", "o"), ("lr", "0.01"), ("hidden-size", "64"), ("vocab-size", "300")));
        Assert.Equal((0.01, 64, 300, 384, 4, 1, 600_000, 5_000, 0.02), (job.Options.LearningRate, job.Options.HiddenSize, job.Options.VocabSize,
            job.Options.IntermediateSize, job.Options.Layers, job.Options.Seed, job.Options.Documents, job.Options.TokenizerDocuments, job.Options.WarmupRatio));
        Assert.Equal("o", job.OutputPath);
        Assert.Equal(600_000, new PretrainJob { OutputPath = "p" }.Options.Documents); // a fresh job's options are not the bound one's
    }
}
