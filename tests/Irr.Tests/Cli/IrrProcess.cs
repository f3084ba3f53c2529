using System.Diagnostics;
using System.Globalization;
using System.Text.RegularExpressions;

namespace Irr.Tests.Cli;

/// <summary>
/// Runs irr as a process of its own under the process's own resource limits (setrlimit through <c>prlimit</c>), for the
/// hostile-input and interruption tests (issue 24): memory is bounded by <c>RLIMIT_DATA</c> (private writable memory:
/// the managed heap, native buffers, anonymous maps; not the file-backed maps of safetensors), time by
/// <c>RLIMIT_CPU</c> (CPU seconds; the kernel ends the process with SIGXCPU). A run that needs more than its limits
/// does not end in exit 2: it dies of the signal or with an out-of-memory internal error (exit 70), and the test fails.
/// No wall clock is asserted, except a generous bound so that a hang ends the test.
/// </summary>
internal static partial class IrrProcess
{
    /// <summary>The memory budget of issue 24's "Done when": under 1 GB (the runtime itself takes ~0.2 GB of it).</summary>
    public const long DataLimitBytes = 1L << 30;

    /// <summary>The time budget of issue 24's "Done when": under 30 s, counted in CPU seconds of the process.</summary>
    public const int CpuLimitSeconds = 30;

    /// <summary>The exit code of a process the kernel ended for its CPU limit (128 + SIGXCPU).</summary>
    public const int ExitCpuLimit = 128 + 24;

    /// <summary>What a finished run printed.</summary>
    public sealed record Result(int Code, string Out, string Err);

    /// <summary>
    /// Runs <c>irr ARGS</c> with at most <paramref name="dataBytes"/> of private memory and <paramref name="cpuSeconds"/> CPU
    /// seconds, in <paramref name="workDir"/> (default: the current directory), with extra environment variables.
    /// A run still going after <paramref name="wallSeconds"/> (a hang that uses no CPU, such as a blocked open) is killed
    /// and reported as exit -1.
    /// </summary>
    public static Result Run(string[] args, string? workDir = null, IReadOnlyDictionary<string, string>? env = null,
        long dataBytes = DataLimitBytes, int cpuSeconds = CpuLimitSeconds, int wallSeconds = 120, string? stdin = null)
    {
        using var p = Start(args, workDir, env, dataBytes, cpuSeconds, redirectStdin: stdin is not null);
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        if (stdin is not null)
        {
            p.StandardInput.Write(stdin);
            p.StandardInput.Close();
        }
        if (!p.WaitForExit(wallSeconds * 1000))
        {
            try { p.Kill(entireProcessTree: true); } catch (InvalidOperationException) { }
            p.WaitForExit();
            return new Result(-1, stdout.Result, stderr.Result);
        }
        p.WaitForExit();
        return new Result(p.ExitCode, stdout.Result, stderr.Result);
    }

    /// <summary>
    /// Starts <c>irr ARGS</c> under the limits, with output and error redirected, and SIGINT at its default action
    /// (<c>env --default-signal=INT</c>: a test run in the background of a non-interactive shell ignores SIGINT, and irr
    /// would inherit that, as under nohup). For tests that signal the process.
    /// </summary>
    public static Process Start(string[] args, string? workDir = null, IReadOnlyDictionary<string, string>? env = null,
        long dataBytes = DataLimitBytes, int cpuSeconds = CpuLimitSeconds, bool redirectStdin = false)
    {
        var info = new ProcessStartInfo("prlimit")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = redirectStdin,
            UseShellExecute = false,
            WorkingDirectory = workDir ?? Environment.CurrentDirectory,
        };
        foreach (string a in (string[])[
                     $"--data={dataBytes.ToString(CultureInfo.InvariantCulture)}",
                     $"--cpu={cpuSeconds.ToString(CultureInfo.InvariantCulture)}",
                     "env", "--default-signal=INT",
                     Examples.ClusterScripts.DotnetHost(), Path.Combine(AppContext.BaseDirectory, "Irr.Cli.dll"), .. args])
            info.ArgumentList.Add(a);
        info.Environment["IRR_DEBUG"] = "0";
        if (env is not null)
            foreach (var (k, v) in env) info.Environment[k] = v;
        return Process.Start(info)!;
    }

    /// <summary>
    /// Asserts the run ended as bad input must (issue 24, "Clean messages"): exit 2, standard error exactly one line
    /// "error: …" that contains <paramref name="mentions"/> (each, ordinal), no control character in it, no stack trace,
    /// no internal error, no runtime crash text. Returns the line.
    /// </summary>
    public static string AssertOneLineError(Result r, params string[] mentions)
    {
        Assert.True(r.Code == 2, $"exit {r.Code}, not 2 (a CPU limit is {ExitCpuLimit}, a hang -1); stderr: {Tail(r.Err)}");
        string[] lines = r.Err.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        string[] errors = [.. lines.Where(l => !l.StartsWith("warning: ", StringComparison.Ordinal) && !l.StartsWith("note: ", StringComparison.Ordinal) && !IsProgress(l))];
        Assert.True(errors.Length == 1, $"expected one error line, got {errors.Length}: {Tail(r.Err)}");
        string line = errors[0];
        Assert.StartsWith("error: ", line);
        AssertNoControlCharacters(r.Err);
        foreach (string m in mentions) Assert.Contains(m, line);
        return line;
    }

    /// <summary>Asserts <paramref name="text"/> holds no control character but line feeds (no ESC, BEL, NUL, CR, …).</summary>
    public static void AssertNoControlCharacters(string text)
    {
        var bad = ControlCharacter().Match(text);
        Assert.False(bad.Success, $"a raw control character U+{(bad.Success ? (int)bad.Value[0] : 0):X4} in: {Tail(text)}");
    }

    // A progress report printed before the error (Spectre's non-interactive lines, e.g. "converting ━━━ 0% 00:00:01").
    private static bool IsProgress(string line) =>
        line.Contains('%') && !line.StartsWith("error", StringComparison.Ordinal) && !line.StartsWith("internal error", StringComparison.Ordinal);

    private static string Tail(string s) => s.Length <= 600 ? s : "…" + s[^600..];

    // C0 controls but \n, DEL, and C1 controls.
    [GeneratedRegex(@"[\x00-\x09\x0B-\x1F\x7F-\x9F]")]
    private static partial Regex ControlCharacter();
}
