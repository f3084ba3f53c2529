using Irr.Cli;
using Irr.Eval.Report;

namespace Irr.Tests.Cli;

/// <summary>Commands derived from job schemas (issue 25): how their command lines parse.</summary>
public class JobCommandTests
{
    private static T Build<T>(params string[] args) where T : Irr.Jobs.IJob
    {
        var root = Program.BuildRoot();
        var parsed = root.Parse(args);
        Assert.Empty(parsed.Errors);
        System.CommandLine.Command command = root;
        foreach (string word in args.TakeWhile(a => !a.StartsWith('-'))) command = command.Subcommands.FirstOrDefault(c => c.Name == word) ?? command;
        return ((JobCommand)command).Build<T>(parsed);
    }

    [Fact]
    public void AListOptionBeforePositionalArgumentsTakesOneWord()
    {
        // irr report --labels a,b RUN1 RUN2: the run directories are the positional arguments, not more labels.
        var job = Build<ReportJob>("report", "--labels", "a,b", "d1", "d2", "-o", "r");
        Assert.Equal(["a", "b"], job.Labels);
        Assert.Equal(["d1", "d2"], job.Runs);
    }

    [Fact]
    public void AListOptionOfACommandWithoutPositionalsTakesSeveralWordsAndCommas()
    {
        var job = Build<Irr.Eval.EvalSafetyJob>("eval", "safety", "--model", "m", "--prompts", "a.json", "b.json", "--attack", "none,prefill", "-o", "o");
        Assert.Equal(["a.json", "b.json"], job.Prompts);
        Assert.Equal(["none", "prefill"], job.Attacks);
    }
}
