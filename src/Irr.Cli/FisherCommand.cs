using System.CommandLine;
using Irr.Realign;

namespace Irr.Cli;

/// <summary><c>irr fisher</c>: the diagonal empirical Fisher of the aligned model on safety data (<see cref="FisherJob"/>); <c>irr fisher merge</c> combines its shards (<see cref="FisherMergeJob"/>).</summary>
internal static class FisherCommand
{
    public static Command Create()
    {
        var command = new JobCommand(typeof(FisherJob));
        command.Subcommands.Add(MergeCommand());
        command.SetAction(parseResult =>
        {
            var job = command.Build<FisherJob>(parseResult);
            var result = CommandSupport.Run(parseResult, job);
            parseResult.InvocationConfiguration.Error.WriteLine(job.ShardNumbers() is var (k, n)
                ? $"shard {k}/{n}: {result.ShardBatches} of the {result.Batches} batches of {result.Records} records; wrote {result.Tensors} partial sums to {job.OutputPath} (combine with irr fisher merge)"
                : $"{result.Records} records in {result.Batches} batches; wrote {result.Tensors} tensors to {job.OutputPath}");
            return 0;
        });
        return command;
    }

    private static Command MergeCommand()
    {
        var command = new JobCommand(typeof(FisherMergeJob), "merge");
        command.SetAction(parseResult =>
        {
            var job = command.Build<FisherMergeJob>(parseResult);
            var result = CommandSupport.Run(parseResult, job);
            parseResult.InvocationConfiguration.Error.WriteLine($"{job.Parts.Count} shards, {result.Batches} batches; wrote {result.Tensors} tensors to {job.OutputPath}");
            return 0;
        });
        return command;
    }
}
