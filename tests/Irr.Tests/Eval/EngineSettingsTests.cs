using Irr.Eval;
using Irr.Jobs;

namespace Irr.Tests.Eval;

/// <summary>
/// The engine and judge options as the jobs declare them (<see cref="EngineSettings"/>, <see cref="JudgeSettings"/>):
/// what the command line binds and the variants they resolve to, checked against values written out by hand.
/// </summary>
public class EngineSettingsTests
{
    private static Dictionary<string, IReadOnlyList<string>> Given(params (string Key, string Value)[] options) =>
        options.ToDictionary(o => o.Key, o => (IReadOnlyList<string>)[o.Value]);

    private static T Bind<T>(params (string Key, string Value)[] options) => JobSchema.Of<T>().Bind<T>(Given(options));

    [Fact]
    public void AUrlAndAModelResolveToARunningEngineWithItsHttpSettings()
    {
        var job = Bind<GenerateJob>(("model", "m"), ("prompts", "p.json"), ("output", "o.jsonl"), ("engine-url", "http://h:8000"), ("engine-model", "served"),
            ("engine-api", "chat"), ("engine-concurrency", "3"), ("engine-timeout", "12.5"), ("engine-retries", "0"), ("engine-retry-delay", "2"),
            ("api-key-env", "KEY"), ("engine-cache", "c.jsonl"));

        var engine = Assert.IsType<RunningEngine>(job.ResolveEngine());
        Assert.Equal(("http://h:8000", "served", "chat", "c.jsonl"), (engine.Url, engine.Model, engine.Api, engine.Cache));
        Assert.Equal(new HttpSettings { Concurrency = 3, Timeout = 12.5, Retries = 0, RetryDelay = 2, ApiKeyEnv = "KEY" }, engine.Http);
    }

    [Fact]
    public void AServeCommandResolvesToAServedEngineWithTheDefaultsOfTheEngine()
    {
        var job = Bind<EvalTaskJob>(("model", "m"), ("data", "d.jsonl"), ("metric", "exact"), ("engine-serve", "vllm serve {model} --port {port}"),
            ("engine-serve-timeout", "60"));

        var engine = Assert.IsType<ServedEngine>(job.ResolveEngine());
        Assert.Equal(("vllm serve {model} --port {port}", null, 60.0, "", "completions", null), (engine.Serve, engine.ServeAdapter, engine.ServeTimeout, engine.Model, engine.Api, engine.Cache));
        Assert.Equal(new HttpSettings { Concurrency = 8, Timeout = 300, Retries = 4, RetryDelay = 1 }, engine.Http);
    }

    [Fact]
    public void NoEngineOptionIsLocalGenerationAndAnyGivenOneMakesAnEngineToCheck()
    {
        Assert.Null(Bind<GenerateJob>(("model", "m"), ("prompts", "p"), ("output", "o")).ResolveEngine());
        // --engine-cache alone: an engine without a URL, reported rather than ignored.
        var job = Bind<GenerateJob>(("model", "m"), ("prompts", "p"), ("output", "o"), ("engine-cache", "c.jsonl"));
        Assert.Equal("generate: engine-url is missing: the serving engine's server URL (e.g. http://localhost:8000), or engine-serve",
            Assert.Throws<IrrException>(job.Validate).Message);
        job = Bind<GenerateJob>(("model", "m"), ("prompts", "p"), ("output", "o"), ("engine-api", "completions")); // at its default, but given
        Assert.StartsWith("generate: engine-url is missing", Assert.Throws<IrrException>(job.Validate).Message);
        job = Bind<GenerateJob>(("model", "m"), ("prompts", "p"), ("output", "o"), ("engine-url", "http://h"), ("engine-serve", "vllm serve {model}"));
        Assert.Equal("generate: give engine-url (a running server) or engine-serve (a command irr starts), not both", Assert.Throws<IrrException>(job.Validate).Message);
    }

    [Fact]
    public void TheKeyVariableIsOneOptionBoundToTheEngineAndTheJudge()
    {
        var job = Bind<EvalSafetyJob>(("model", "m"), ("prompts", "p.json"), ("output", "o"), ("judge", "http"), ("judge-url", "http://j"), ("judge-model", "guard"),
            ("engine-url", "http://e"), ("engine-model", "served"), ("api-key-env", "KEY"));

        Assert.Single(JobSchema.Of<EvalSafetyJob>().Options, o => o.Key == "api-key-env");
        Assert.Equal("KEY", job.ResolveEngine()!.Http.ApiKeyEnv);
        var judge = Assert.IsType<HttpJudgeOptions>(job.ResolveJudge());
        Assert.Equal(new HttpSettings { Concurrency = 4, Timeout = 120, Retries = 4, RetryDelay = 1, ApiKeyEnv = "KEY" }, judge.Http);
        Assert.Equal(("http://j", "guard", "llama-guard", null), (judge.Url, judge.Model, judge.Protocol, judge.Cache));

        // Alone, it is the judge's: no engine; where only an engine uses it, it needs one.
        Assert.Null(Bind<EvalSafetyJob>(("prompts", "p.json"), ("output", "o"), ("api-key-env", "KEY")).ResolveEngine());
        Assert.Equal("generate: api-key-env applies with engine-url (the key of a serving engine)",
            Assert.Throws<IrrException>(() => Bind<GenerateJob>(("model", "m"), ("prompts", "p"), ("output", "o"), ("api-key-env", "KEY")).ResolveEngine()).Message);
    }

    [Fact]
    public void TheJudgeDefaultsToTheKeywordJudgeAndItsOptionsAreChecked()
    {
        Assert.Equal(new KeywordJudgeOptions(), Bind<EvalSafetyJob>(("responses", "r.jsonl"), ("output", "o")).ResolveJudge());
        Assert.Equal(new KeywordJudgeOptions { RefusalMarkers = "k.txt" }, Bind<EvalSafetyJob>(("responses", "r.jsonl"), ("output", "o"), ("refusal-markers", "k.txt")).ResolveJudge());
        Assert.Equal("eval safety: judge-cache applies to judge http only (the keyword judge needs no cache)",
            Assert.Throws<IrrException>(Bind<EvalSafetyJob>(("responses", "r.jsonl"), ("output", "o"), ("judge-cache", "c.jsonl")).Validate).Message);
    }

    [Fact]
    public void OptionsThatRunACommandAreRefusedInRecipesAndHowNotWhatIsNotFingerprinted()
    {
        var options = JobSchema.Of<EvalSafetyJob>().Options.ToDictionary(o => o.Key);
        Assert.Equal(["engine-serve", "engine-serve-adapter"], options.Values.Where(o => o.Attribute.CommandLineOnly is not null).Select(o => o.Key));
        string[] notFingerprinted = ["output", "judge-cache", "engine-cache", "api-key-env", "judge-concurrency", "judge-timeout", "judge-retries", "judge-retry-delay",
            "engine-serve-timeout", "engine-concurrency", "engine-timeout", "engine-retries", "engine-retry-delay"];
        Assert.Equal(notFingerprinted.Order(), options.Values.Where(o => !o.Attribute.Fingerprinted).Select(o => o.Key).Order());
    }
}
