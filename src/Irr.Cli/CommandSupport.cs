using System.CommandLine;
using System.Diagnostics;
using Irr.Jobs;
using Spectre.Console;

namespace Irr.Cli;

/// <summary>What the commands share: the console, the exit code of a generating command and the job runner with its progress bars.</summary>
internal static class CommandSupport
{
    /// <summary>
    /// The exit code of a generating command: 0, or when some generations by a serving engine failed,
    /// <see cref="Program.ExitGenerationsFailed"/> after one line saying so (everything else is written).
    /// </summary>
    /// <param name="rerun">How to rerun: "rerun the same command", or with --overwrite for a command that refuses its existing output.</param>
    public static int GenerationExit(TextWriter stderr, int failed, int total, string rerun = "rerun the same command")
    {
        if (failed == 0) return 0;
        stderr.WriteLine($"error: {failed} of {total} generations failed (recorded with their reason); {rerun} to ask the server for those only");
        return Program.ExitGenerationsFailed;
    }

    /// <summary>"1 response", "2 responses".</summary>
    public static string Plural(int count, string noun) => count == 1 ? $"1 {noun}" : $"{count} {noun}s";

    /// <summary>
    /// A Spectre console writing to <paramref name="writer"/>: with colours and cursor control only when the writer
    /// is the process's own standard output or error and that is a terminal, so redirected output and files stay plain text.
    /// </summary>
    public static IAnsiConsole ConsoleFor(TextWriter writer)
    {
        bool terminal = (ReferenceEquals(writer, Console.Out) && !Console.IsOutputRedirected)
            || (ReferenceEquals(writer, Console.Error) && !Console.IsErrorRedirected);
        return AnsiConsole.Create(new AnsiConsoleSettings
        {
            Out = new AnsiConsoleOutput(writer),
            Ansi = terminal ? AnsiSupport.Detect : AnsiSupport.No,
            ColorSystem = terminal ? ColorSystemSupport.Detect : ColorSystemSupport.NoColors,
        });
    }

    /// <summary>The command of a job that writes tensors (an <see cref="IJob{T}"/> of int): runs it, then reports "wrote N tensors to OUTPUT".</summary>
    public static JobCommand TensorWriter(Type jobType)
    {
        var command = new JobCommand(jobType);
        command.SetAction(parseResult =>
        {
            var job = (IJob<int>)command.Build(parseResult);
            int tensors = Run(parseResult, job);
            parseResult.InvocationConfiguration.Error.WriteLine($"wrote {tensors} tensors to {job.Output}");
            return 0;
        });
        return command;
    }

    /// <summary>
    /// Runs a job with progress bars on standard error (so results on standard output stay clean): one bar per
    /// stage the job reports, with the rate of what the stage processes (tokens/s …) when it counts that; with
    /// <paramref name="oneBar"/>, a single bar whose text follows the stages (for a job whose Done/Total run over all
    /// its stages, as irr sweep's do). The library's warnings (<see cref="Diagnostics.Warn"/>) are printed after the bars.
    /// </summary>
    public static T Run<T>(ParseResult parseResult, IJob<T> job, bool oneBar = false)
    {
        job.Validate(); // before the bars: a bad option is one line, not a bar and a line
        JobSchema.Of(job.GetType()).RequireInputsExist(job); // a missing input named by its option
        var console = ConsoleFor(parseResult.InvocationConfiguration.Error);
        T result = default!;
        console.Progress()
            .AutoClear(false)
            .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new ElapsedTimeColumn(), new RemainingTimeColumn())
            .Start(ctx =>
            {
                var tasks = new Dictionary<string, (ProgressTask Task, Stopwatch Clock)>(StringComparer.Ordinal);
                string current = "";
                result = job.Run(p =>
                {
                    Interruption.ThrowIfRequested(); // every progress report is a step at which Ctrl-C stops the job
                    string key = oneBar ? "" : p.Stage;
                    if (!tasks.TryGetValue(key, out var entry))
                    {
                        foreach (var (t, _) in tasks.Values) t.Value = t.MaxValue; // the previous stage is over
                        tasks[key] = entry = (ctx.AddTask(Markup.Escape(p.Stage), maxValue: Math.Max(p.Total, 1e-9)), Stopwatch.StartNew());
                    }
                    if (oneBar && p.Stage != current) // the one bar's text and rate follow the stage
                    {
                        current = p.Stage;
                        entry.Task.Description = Markup.Escape(p.Stage);
                        entry.Clock.Restart();
                    }
                    entry.Task.MaxValue = Math.Max(p.Total, 1e-9);
                    entry.Task.Value = p.Done;
                    if (p.Processed > 0)
                    {
                        double seconds = Math.Max(entry.Clock.Elapsed.TotalSeconds, 1e-3);
                        entry.Task.Description = Markup.Escape($"{p.Stage} · {p.Processed / seconds:F0} {p.Unit}/s");
                    }
                });
                foreach (var (t, _) in tasks.Values) t.Value = t.MaxValue;
            });
        Warnings.Current?.Flush(); // the library's warnings (a model's two weight layouts …), after the bars
        return result;
    }
}
