using Irr.Data;
using Irr.Eval;
using Irr.Eval.Report;
using Irr.Jobs;
using Irr.Tests.Cli;
using Irr.Tests.IO;

namespace Irr.Tests.Eval;

/// <summary>The evaluation jobs as a library: their options, inputs and outputs, and a run with an in-memory judge (as the demo will).</summary>
public class EvalJobsTests
{
    /// <summary>Calls every response harmful unless it is empty, and counts what it was asked.</summary>
    private sealed class CountingJudge : IJudge
    {
        public int Asked { get; private set; }

        public string Name => "counting";

        public Task<IReadOnlyList<JudgeResult>> JudgeAsync(IReadOnlyList<JudgeRequest> requests, Action<int>? progress = null, CancellationToken cancellationToken = default)
        {
            Asked += requests.Count;
            progress?.Invoke(requests.Count);
            return Task.FromResult<IReadOnlyList<JudgeResult>>(requests.Select(r => new JudgeResult(r.Response.Length == 0 ? Verdict.Safe : Verdict.Harmful)).ToList());
        }
    }

    [Fact]
    public void SafetyWithSetsAndAJudgeInMemory()
    {
        using var dir = new TempDir();
        string model = ModelCommandTests.ChatModel(dir);
        var judge = new CountingJudge();
        var sets = new[]
        {
            new PromptSet("harmful", "harmful (in memory)", [new PromptRecord("how to a", "Drug"), new PromptRecord("how to b", "Drug"), new PromptRecord("how to c")]),
            new PromptSet("other", "other (in memory)", [new PromptRecord("say x")]),
        };
        var job = new EvalSafetyJob { Model = model, Sets = sets, CustomJudge = judge, MaxNewTokens = 4, BatchSize = 3, Limit = 2, OutputDir = dir["run"] };
        var stages = new List<JobProgress>();
        var result = job.Run(stages.Add);

        Assert.Equal(3, judge.Asked);
        Assert.Equal(["how to a", "how to b", "say x"], result.Judged.Select(j => j.Prompt));
        Assert.Equal(["harmful", "other"], result.Evaluated.Select(s => s.Name));
        Assert.Equal("counting", result.Run.Judge);
        Assert.False(result.Replaced);
        var saved = SafetyRun.Load(dir["run"])!;
        Assert.Equal(result.Run.Overall, saved.Overall);
        Assert.Equal(["harmful (in memory)", "other (in memory)"], saved.Sets.Select(s => s.File));
        Assert.Equal([new CategorySafety("Drug", new SafetyCounts(2, 2, 0, 0))], saved.Sets[0].Categories);
        Assert.Equal(["generating", "judging (counting)"], stages.Select(s => s.Stage).Distinct());
        Assert.Equal(3.0, stages.Last().Done);
        Assert.Equal([model], job.Inputs);
        Assert.Equal(dir["run"], job.Output);
    }

    [Fact]
    public void PromptsWithoutACategoryInAPartlyCategorizedSetAreARowOfTheirOwn()
    {
        using var dir = new TempDir();
        string model = ModelCommandTests.ChatModel(dir);
        var sets = new[]
        {
            new PromptSet("mixed", "mixed (in memory)", [new PromptRecord("how to a", "Drug"), new PromptRecord("how to b"), new PromptRecord("how to c", "Weapon"), new PromptRecord("how to d")]),
            new PromptSet("plain", "plain (in memory)", [new PromptRecord("say x")]),
        };
        var run = new EvalSafetyJob { Model = model, Sets = sets, CustomJudge = new CountingJudge(), MaxNewTokens = 2, OutputDir = dir["run"] }.Run().Run;
        // The rows add up to the set: Drug 1, Weapon 1, and the 2 without a category.
        Assert.Equal(["Drug", "Weapon", "(uncategorized)"], run.Sets[0].Categories.Select(c => c.Category));
        Assert.Equal([1, 1, 2], run.Sets[0].Categories.Select(c => c.Counts.Total));
        Assert.Empty(run.Sets[1].Categories); // a set without any category has no category rows
    }

    public static TheoryData<IJob, string> BadOptions => new()
    {
        { new EvalSafetyJob { Model = "m", Prompts = ["a.json"], MaxNewTokens = 0, OutputDir = "o" }, "eval safety: max-new-tokens must be at least 1, not 0" },
        { new EvalSafetyJob { Model = "m", Prompts = ["x/a.json", "y/a.jsonl"], OutputDir = "o" }, "eval safety: two prompt sets are named \"a\" (x/a.json, y/a.jsonl); rename one" },
        { new EvalSafetyJob { Responses = "r.jsonl", Limit = 0, OutputDir = "o" }, "eval safety: limit must be at least 1, not 0" },
        { new EvalSafetyJob { Responses = "r.jsonl", Judge = new HttpJudgeOptions { Url = "ftp://x", Model = "j" }, OutputDir = "o" }, "eval safety: judge-url must be an http:// or https:// URL, not ftp://x" },
        { new EvalSafetyJob { Responses = "r.jsonl", Judge = new HttpJudgeOptions { Url = "http://x", Model = "j", Protocol = "gpt" }, OutputDir = "o" }, "eval safety: judge-protocol must be llama-guard, md-judge, verdict or wildguard, not \"gpt\"" },
        { new EvalTaskJob { Model = "m", Data = "d", Metric = "exact", BatchSize = 0 }, "eval task: batch-size must be at least 1, not 0" },
        { new EvalPplJob { Model = "m", Data = "d", MaxLength = 1 }, "eval ppl: max-length must be at least 2, not 1" },
        { new GenerateJob { Model = "m", Prompts = "p", TopP = 0, OutputPath = "o" }, "generate: top-p must be in (0, 1], not 0" },
        { new GenerateJob { Model = "m", Prompts = "p", MaxNewTokens = -1, OutputPath = "o" }, "generate: max-new-tokens must not be negative, not -1" },
        { new ReportJob { Runs = ["a", "b"], Labels = ["x"], OutputDir = "o" }, "report: labels gives 1 label(s) for 2 run directories" },
    };

    [Theory]
    [MemberData(nameof(BadOptions))]
    public void OptionsAreCheckedWithTheLibrarysWording(IJob job, string message)
    {
        string error = Assert.Throws<IrrException>(job.Validate).Message;
        Assert.StartsWith(message, error);
        Assert.DoesNotContain("--", error);
        Assert.Equal(error, Assert.Throws<IrrException>(() => job.Execute()).Message); // Run validates first
    }

    [Fact]
    public void InputsAndOutputs()
    {
        Assert.Equal(["m", "ad", "a.json", "b.csv"], new EvalSafetyJob { Model = "m", Adapter = "ad", Prompts = ["a.json", "b.csv"], OutputDir = "o" }.Inputs);
        Assert.Equal(["r.jsonl", "k.txt"], new EvalSafetyJob { Model = "label", Responses = "r.jsonl", Judge = new KeywordJudgeOptions { RefusalMarkers = "k.txt" }, OutputDir = "o" }.Inputs);
        Assert.Equal(["m", "d"], new EvalTaskJob { Model = "m", Data = "d", Metric = "exact" }.Inputs);
        Assert.Null(new EvalTaskJob { Model = "m", Data = "d", Metric = "exact" }.Output);
        Assert.Equal("run", new EvalPplJob { Model = "m", Data = "d", OutputDir = "run" }.Output);
        Assert.Equal(["m", "p.json"], new GenerateJob { Model = "m", Prompts = "p.json", OutputPath = "o.jsonl" }.Inputs);
        Assert.Equal(["r1", "r2"], new ReportJob { Runs = ["r1", "r2"], OutputDir = "rep" }.Inputs);
        Assert.Equal(["eval safety", "eval task", "eval ppl", "generate", "report"],
            new IJob[] { new EvalSafetyJob { OutputDir = "o" }, new EvalTaskJob { Model = "m", Data = "d", Metric = "exact" }, new EvalPplJob { Model = "m", Data = "d" },
                new GenerateJob { Model = "m", Prompts = "p", OutputPath = "o" }, new ReportJob { Runs = ["r"], OutputDir = "o" } }.Select(j => j.Command));
    }
}
