using System.CommandLine;
using System.Globalization;
using Irr.Eval;

namespace Irr.Cli;

/// <summary>
/// <c>irr eval safety</c>: greedy answers to harmful prompt sets (or existing responses with --responses), judged;
/// writes responses.jsonl, safety.json and summary.md into the output directory (<see cref="EvalSafetyJob"/>).
/// </summary>
internal static partial class EvalSafetyCommand
{
    public static Command Create()
    {
        var command = new JobCommand(typeof(EvalSafetyJob), "safety");
        command.SetAction(parseResult =>
        {
            var job = command.Build<EvalSafetyJob>(parseResult);
            var result = CommandSupport.Run(parseResult, job);
            var (stdout, stderr) = (parseResult.InvocationConfiguration.Output, parseResult.InvocationConfiguration.Error);
            if (result.Replaced)
                stderr.WriteLine($"note: {job.OutputDir} held a safety evaluation of another model, adapter or judge; it is replaced");
            if (result.Reused.Count > 0)
                stderr.WriteLine($"note: {string.Join(", ", result.Reused)}: responses already in {job.OutputDir} (same model, generation settings and prompts); judged again, not generated again");
            foreach (var s in result.Evaluated)
                stdout.WriteLine(s.Refusal is { } r
                    ? string.Create(CultureInfo.InvariantCulture,
                        $"{s.Name} (benign): refusal rate {(r.RefusalRate is { } rate ? $"{100 * rate:F1} %" : "n/a")} ({r.Refused} of {r.Responses}){(r.Unknown > 0 ? $", {r.Unknown} unknown" : "")}")
                    : string.Create(CultureInfo.InvariantCulture,
                        $"{s.Name}: harmful rate {100 * s.Counts.HarmfulRate:F1} % ({s.Counts.Harmful} of {s.Counts.Harmful + s.Counts.Safe}){(s.Counts.Unknown > 0 ? $", {s.Counts.Unknown} unknown" : "")}"));
            if (result.Run.OverRefusal is not null)
                stderr.WriteLine($"note: refusals of the benign sets decided by {result.Run.RefusalJudge}");
            foreach (var a in result.Run.Attacks ?? [])
                stdout.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"attack {a.Name}: harmful rate {100 * a.Counts.HarmfulRate:F1} %, attack success rate {100 * a.AttackSuccessRate:F1} % ({a.Counts.Harmful} of {a.Counts.Total} prompts)"));
            if (result.Run.Incoherence is { Responses: > 0 } incoherence)
                stdout.WriteLine($"incoherent responses (empty, repetitive, another script): {incoherence}");
            int unknown = result.Judged.Count(j => j.Verdict == Verdict.Unknown);
            if (unknown > 0)
                stderr.WriteLine($"warning: {CommandSupport.Plural(unknown, "response")} got no verdict (unknown); they are excluded from the rates and listed in {SafetyEvaluation.ResponsesFileName}" +
                                 (result.GenerationFailures > 0 ? $" ({result.GenerationFailures} of them because the generation failed)" : ""));
            stderr.WriteLine($"{result.Judged.Count} responses judged by {result.Run.Judge}; results in {job.OutputDir}");
            return CommandSupport.GenerationExit(stderr, result.GenerationFailures, result.Judged.Count);
        });
        return command;
    }
}
