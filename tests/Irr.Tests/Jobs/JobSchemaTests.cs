using System.Text.Json.Nodes;
using Irr.Jobs;
using Irr.Realign;
using Irr.Tests.IO;

namespace Irr.Tests.Jobs;

/// <summary>The job schema (issue 25) on a job written for the test, its expectations worked out by hand from the declarations.</summary>
public class JobSchemaTests
{
    /// <summary>An options record held by <see cref="ToyJob"/>: its options join the job's; "seed" is shared with the job.</summary>
    public sealed record ToyEngine
    {
        [Option("the URL", Name = "engine-url")]
        public string? Url { get; init; }

        [Option("requests in flight", Name = "engine-concurrency", Fingerprinted = false)]
        public int Concurrency { get; init; } = 8;

        [Option("the seed")]
        public int Seed { get; init; }
    }

    [Job("toy", Help = "a job for the test", OutputExtension = ".safetensors", Produces = ArtifactKind.Fisher)]
    public sealed record ToyJob : IJob<int>
    {
        [Option("a required input", Kind = OptionKind.Input, Required = true, From = ArtifactKind.SafetyVector)]
        public string Model { get; init; } = "";

        [Option("records per batch")]
        public int BatchSize { get; init; } = 4;

        [Option("data files", Kind = OptionKind.Input)]
        public IReadOnlyList<string> Files { get; init; } = [];

        [Option("rates", Name = "rate")]
        public IReadOnlyList<double> Rates { get; init; } = [0.5];

        [Option("skip the ablation", Name = "no-ablation", Negated = true)]
        public bool Ablation { get; init; } = true;

        [Option("target modules", Parser = typeof(TargetModules.OptionParser))]
        public IReadOnlyList<string>? Modules { get; init; }

        [Option("the seed")]
        public int Seed { get; init; }

        [Options]
        public ToyEngine? Engine { get; init; }

        [Option("the output", Name = "output", Alias = "-o", Kind = OptionKind.Output, Fingerprinted = false)]
        public string? OutputPath { get; init; }

        public string Command => "toy";
        public IReadOnlyList<string> Inputs => [Model];
        public string? Output => OutputPath;
        public void Validate() { }
        public int Run(Action<JobProgress>? progress = null) => 0;
    }

    private static Dictionary<string, IReadOnlyList<string>> Given(params (string Key, string[] Values)[] pairs) =>
        pairs.ToDictionary(p => p.Key, p => (IReadOnlyList<string>)p.Values);

    [Fact]
    public void KeysDefaultsAndKindsComeFromTheDeclarations()
    {
        var schema = JobSchema.Of<ToyJob>();
        Assert.Equal(["model", "batch-size", "files", "rate", "no-ablation", "modules", "seed", "engine-url", "engine-concurrency", "output"], schema.Options.Select(o => o.Key));
        Assert.Equal(4, schema.Find("batch-size")!.Default);
        Assert.Same(schema.Find("output"), schema.Find("o"));
        Assert.True(schema.Find("no-ablation")!.IsFlag);
        Assert.True(schema.Find("rate")!.IsList);
        Assert.Equal(2, schema.Find("seed")!.Properties.Count); // the job's and the engine's
        Assert.Equal("batch-size", JobSchema.Kebab("BatchSize"));
        Assert.Equal("safety-vector", JobSchema.Kebab("SafetyVector"));
    }

    [Fact]
    public void BindingConvertsListsFlagsAndSharedKeys()
    {
        var schema = JobSchema.Of<ToyJob>();
        var job = schema.Bind<ToyJob>(Given(("model", ["m"]), ("rate", ["0.1,0.2", "0.3"]), ("no-ablation", ["true"]), ("modules", ["v_proj,q_proj"]), ("seed", ["7"])));
        Assert.Equal("m", job.Model);
        Assert.Equal(4, job.BatchSize);
        Assert.Equal([0.1, 0.2, 0.3], job.Rates);
        Assert.False(job.Ablation);
        Assert.Equal(["q_proj", "v_proj"], job.Modules); // forward order, as TargetModules.Parse gives
        Assert.Equal(7, job.Seed);
        Assert.Equal(7, job.Engine!.Seed); // a shared key binds every property that declares it
        Assert.Equal(8, job.Engine.Concurrency); // the record's own default

        var plain = schema.Bind<ToyJob>(Given(("model", ["m"])));
        Assert.Null(plain.Engine); // no engine option given: no engine
        Assert.True(plain.Ablation);
        Assert.Equal([0.5], plain.Rates);
    }

    [Fact]
    public void APathListSplitsAtCommasUnlessTheWholeValueIsAPath()
    {
        using var dir = new TempDir();
        File.WriteAllText(dir["a,b.json"], "[]");
        var job = JobSchema.Of<ToyJob>().Bind<ToyJob>(Given(("model", ["m"]), ("files", [dir["a,b.json"], "x.json,y.json"])));
        Assert.Equal([dir["a,b.json"], "x.json", "y.json"], job.Files);
    }

    [Theory]
    [InlineData("batch-size", "four", "toy: batch-size must be a whole number, not 'four'")]
    [InlineData("rate", "0.1,x", "toy: rate must be a number, not 'x'")]
    [InlineData("no-ablation", "maybe", "toy: no-ablation must be a flag: true or false, not 'maybe'")]
    public void ABadValueIsOneLineNamingTheOption(string key, string value, string expected)
    {
        var e = Assert.Throws<IrrException>(() => JobSchema.Of<ToyJob>().Bind(Given(("model", ["m"]), (key, [value]))));
        Assert.Equal(expected, e.Message);
    }

    [Fact]
    public void ARequiredOptionIsRequiredAndASingleValueIsOne()
    {
        Assert.Equal("toy: model is required", Assert.Throws<IrrException>(() => JobSchema.Of<ToyJob>().Bind(Given())).Message);
        Assert.Equal("toy: batch-size takes one value, not 2",
            Assert.Throws<IrrException>(() => JobSchema.Of<ToyJob>().Bind(Given(("model", ["m"]), ("batch-size", ["1", "2"])))).Message);
    }

    [Fact]
    public void TheFingerprintHoldsWhatChangesTheResultAndTheDescriptionEverything()
    {
        var job = JobSchema.Of<ToyJob>().Bind<ToyJob>(Given(("model", ["m"]), ("engine-url", ["http://x"]), ("o", ["out"])));
        var fingerprint = JobSchema.Of<ToyJob>().Fingerprint(job);
        Assert.Equal("""{"model":"m","batch-size":4,"files":[],"rate":[0.5],"no-ablation":false,"modules":null,"seed":0,"engine-url":"http://x"}""",
            fingerprint.ToJsonString());
        var all = JobSchema.Of<ToyJob>().Describe(job);
        Assert.Equal(8, (int)all["engine-concurrency"]!);
        Assert.Equal("out", (string)all["output"]!);
        Assert.True(UpToDate.Same(JsonNode.Parse(fingerprint.ToJsonString()), fingerprint));
        Assert.False(UpToDate.Same(null, fingerprint));
    }

    [Fact]
    public void TheRecipeWiringOfAJobIsDerivedFromItsDeclarations()
    {
        var spec = StepSpec.Of(JobSchema.Of<ToyJob>());
        Assert.Equal("toy", spec.Command);
        Assert.Equal(".safetensors", spec.OutputExtension);
        Assert.Equal(ArtifactKind.Fisher, spec.Produces);
        Assert.Equal([new PathOption("model", true, ArtifactKind.SafetyVector), new PathOption("files")], spec.Paths);
    }
}
