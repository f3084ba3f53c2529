using System.CommandLine;
using System.CommandLine.Help;
using System.CommandLine.Invocation;
using System.Reflection;

namespace Irr.Cli;

/// <summary>
/// The <c>irr</c> command line. Each command lives in its own file (<c>XxxCommand.Create()</c>) and is
/// registered in <see cref="BuildRoot"/>. Errors never reach the user as stack traces: input problems
/// (<see cref="IrrException"/>, I/O errors) print <c>error: …</c> and exit with 2; a bug prints
/// <c>internal error: …</c> and exits with 70 (set <c>IRR_DEBUG=1</c> to see the trace). Usage errors
/// found by the parser exit with 1. SIGINT (Ctrl-C) and SIGTERM stop the command: it unwinds (temporaries deleted, servers
/// stopped), one line says what was kept and what was not written, and irr exits with 130 or 143; a second signal ends
/// irr at once (<see cref="Interruption"/>).
/// </summary>
public static class Program
{
    /// <summary>Exit code for a wrong command line (an unknown option, a missing argument, a value that does not parse).</summary>
    public const int ExitUsage = 1;

    /// <summary>Exit code for bad input: a malformed or missing file, an invalid value (<see cref="IrrException"/>).</summary>
    public const int ExitBadInput = 2;

    /// <summary>
    /// Exit code of a generating command that finished and wrote everything, but some of whose generations by a serving
    /// engine failed (recorded with their reason; a rerun asks only those again), so that a job chain (Slurm afterok)
    /// does not go on with missing answers.
    /// </summary>
    public const int ExitGenerationsFailed = 3;

    /// <summary>Exit code for an internal error (a bug in irr).</summary>
    public const int ExitInternalError = 70;

    /// <summary>Exit code after SIGINT (Ctrl-C): 128 + 2, as a shell reports a process the signal ended.</summary>
    public const int ExitInterrupted = 130;

    /// <summary>Exit code after SIGTERM (kill, a scheduler's time limit, an eviction): 128 + 15.</summary>
    public const int ExitTerminated = 143;

    public static int Main(string[] args) => Run(args, Console.Out, Console.Error);

    /// <summary>Parses and runs one command line, writing to the given streams.</summary>
    public static int Run(string[] args, TextWriter output, TextWriter error) => Run(BuildRoot(), args, output, error);

    /// <summary>Parses and runs one command line against the given root command.</summary>
    internal static int Run(Command root, string[] args, TextWriter output, TextWriter error)
    {
        // A command run by another (irr run's steps) shares its stop request, notes and output locks: only the outermost
        // starts afresh and says the closing line of an interruption.
        int depth = Depth.Value;
        if (depth == 0)
        {
            Interruption.Reset();
            lock (ClosingGate) _closingSaid = false;
        }
        Depth.Value = depth + 1;
        try
        {
            // The exit code goes with the line said: the second signal's, or the first's when the command said its line already.
            using var signals = Interruption.CatchSignals(signal => SayClosing(error,
                $"interrupted again ({signal}): stopped at once; temporary files removed, started serving engines stopped") ? signal : Interruption.Signal ?? signal);
            using var holding = IO.OutputLock.HoldForCommand();
            return RunCatching(root, args, output, error, nested: depth > 0);
        }
        finally
        {
            Depth.Value = depth;
        }
    }

    private static readonly AsyncLocal<int> Depth = new();
    private static readonly Lock ClosingGate = new();
    private static bool _closingSaid;

    // The one closing line of an interruption: whichever comes first, the unwound command's or a second signal's.
    private static bool SayClosing(TextWriter error, string line)
    {
        lock (ClosingGate)
        {
            if (_closingSaid) return false;
            _closingSaid = true;
            error.WriteLine(line);
            error.Flush();
            return true;
        }
    }

    private static int RunCatching(Command root, string[] args, TextWriter output, TextWriter error, bool nested)
    {
        var config = new InvocationConfiguration { Output = output, Error = error, EnableDefaultExceptionHandler = false };
        using var listening = Warnings.Listen(error);
        using var downloads = DownloadBars.Listen(error); // a bar per file fetched from the Hub (while options bind)
        var warnings = Warnings.Current!;
        try
        {
            var parsed = root.Parse(args);
            // A wrong command line: one line, the first problem in irr's words and where the help is, not the whole help text.
            if (parsed.Errors.Count > 0 && !args.Any(a => a is "-h" or "--help" or "-?"))
            {
                error.WriteLine($"error: {Diagnostics.Escape(UsageErrors.Describe(parsed))}");
                return ExitUsage;
            }
            int code = parsed.Invoke(config);
            warnings.Flush();
            return code;
        }
        catch (Exception) when (Interruption.Requested)
        {
            // Whatever the stop ended in (OperationCanceledException, or an error of an await it cut short): one line.
            downloads.EndLine();
            warnings.Flush();
            if (nested) throw;
            SayClosing(error, Interruption.ClosingLine());
            return Interruption.ExitCode(Interruption.Signal);
        }
        catch (IrrException e)
        {
            downloads.EndLine();
            warnings.Flush();
            error.WriteLine($"error: {Diagnostics.Escape(e.Message)}");
            return e is GenerationsFailedException ? ExitGenerationsFailed : ExitBadInput;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // The path, in irr's words ("x: no such file or directory", not the runtime's "Could not find file 'x'.").
            downloads.EndLine();
            warnings.Flush();
            error.WriteLine($"error: {IO.InputFile.Describe(e)}");
            return ExitBadInput;
        }
        catch (Exception e)
        {
            downloads.EndLine();
            warnings.Flush();
            error.WriteLine($"internal error: {e.GetType().Name}: {Diagnostics.Escape(e.Message)}");
            error.WriteLine(Environment.GetEnvironmentVariable("IRR_DEBUG") == "1"
                ? e.ToString()
                : "This is a bug in irr. Run again with IRR_DEBUG=1 for details, and please report it.");
            return ExitInternalError;
        }
    }

    /// <summary>The root command with every subcommand.</summary>
    /// <remarks>
    /// A plain command named "irr" rather than <see cref="RootCommand"/>, whose name is the
    /// executable's ("Irr.Cli"): the tool is installed as <c>irr</c> and its help should say so.
    /// </remarks>
    public static Command BuildRoot()
    {
        var root = new Command("irr",
            "Restore the safety alignment of a fine-tuned LLM after the fact with IRR " +
            "(Identify, Remove, Recalibrate; Wu et al., ACL 2025 Findings).")
        {
            new HelpOption(),
            new VersionOption { Action = new PrintVersion() },
            InspectCommand.Create(),
            TokenizeCommand.Create(),
            ChatFormatCommand.Create(),
            ScoreCommand.Create(),
            GenerateCommand.Create(),
            TrainCommand.Create(),
            SafetyVectorCommand.Create(),
            FisherCommand.Create(),
            RealignCommand.Create(),
            SweepCommand.Create(),
            EvalCommand.Create(),
            ReportCommand.Create(),
            DemoCommand.Create(),
            RunCommand.Create(),
            ConvertCommand.Create(),
            BaselineCommand.Create(),
        };
        // `irr` on its own shows the help, like `irr --help`.
        root.SetAction(parseResult => new HelpAction().Invoke(parseResult));
        return root;
    }

    /// <summary>The version of irr, e.g. "0.1.0".</summary>
    public static string Version { get; } =
        typeof(Program).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion ?? "unknown";

    // The built-in --version prints the entry assembly's version, which is the test host's under xunit.
    private sealed class PrintVersion : SynchronousCommandLineAction
    {
        public override int Invoke(ParseResult parseResult)
        {
            parseResult.InvocationConfiguration.Output.WriteLine(Version);
            return 0;
        }
    }
}
