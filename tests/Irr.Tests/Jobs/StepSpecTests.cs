using System.CommandLine;
using Irr.Cli;
using Irr.Jobs;

namespace Irr.Tests.Jobs;

/// <summary>irr run's wiring table (<see cref="StepSpec.All"/>) against the jobs the commands build.</summary>
public class StepSpecTests
{
    // The job a command builds when every input path option of the table is given a value of its own (the
    // others keep their defaults; the required flags of train and eval task are given).
    private static (IJob Job, Dictionary<string, string> Paths) Build(StepSpec spec)
    {
        var root = Program.BuildRoot();
        Command command = root;
        foreach (string word in spec.Command.Split(' ')) command = command.Subcommands.Single(c => c.Name == word);
        var args = new List<string>(spec.Command.Split(' '));
        var paths = new Dictionary<string, string>();
        foreach (var p in spec.Paths.Where(p => p.IsInput))
        {
            string value = $"/in/{p.Key}";
            paths[p.Key] = value;
            if (p.Key == spec.Positional) continue;
            args.AddRange([$"--{p.Key}", value]);
        }
        args.AddRange(["--output", "/out/x"]);
        args.AddRange(spec.Command switch
        {
            "train" => ["--full"],
            "eval task" => ["--metric", "exact"],
            "sweep" => ["--sparsity", "0", "--task-metric", "exact"],
            _ => [],
        });
        if (spec.Positional is { } positional) args.AddRange(["--", paths[positional]]);
        var parsed = root.Parse(args);
        return (((JobCommand)command).Build(parsed), paths);
    }

    [Fact]
    public void EveryInputAJobReadsIsAPathOptionOfTheTable()
    {
        foreach (var spec in StepSpec.All)
        {
            var (job, paths) = Build(spec);
            Assert.Equal(spec.Command, job.Command);
            foreach (string input in job.Inputs)
                Assert.True(paths.ContainsValue(input), $"{spec.Command}: the job reads {input}, which is not among the table's inputs ({string.Join(", ", paths.Keys)})");
            Assert.Equal("/out/x", job.Output);
        }
    }
}
