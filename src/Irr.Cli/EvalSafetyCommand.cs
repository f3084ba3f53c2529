using System.CommandLine;
using Irr.Jobs;
using System.Globalization;
using Irr.Eval;

namespace Irr.Cli;

/// <summary>
/// <c>irr eval safety</c>: greedy answers to harmful prompt sets (or existing responses with --responses), judged;
/// writes responses.jsonl, safety.json and summary.md into the output directory (<see cref="EvalSafetyJob"/>).
/// </summary>
internal static class EvalSafetyCommand
{
    public static Command Create()
    {
        var model = new Option<string?>("--model") { Description = "Hugging Face model directory (required unless --responses is given)" };
        var adapter = CommandSupport.AdapterOption();
        var prompts = new Option<string[]>("--prompts")
        {
            Description = $"prompt sets, one per file: {OptionHelp.PromptFormats}",
            AllowMultipleArgumentsPerToken = true,
        };
        var responses = new Option<string?>("--responses") { Description = $"judge existing responses instead of generating: records with a prompt and a response, and optionally category and set (e.g. an earlier responses.jsonl); {OptionHelp.DataFormats}" };
        var attack = new Option<string[]>("--attack")
        {
            Description = $"send every prompt under these attacks, comma-separated: {string.Join(", ", Attacks.BuiltInNames)}, or the names of --attack-file's attacks (default none: each prompt as it is)",
            AllowMultipleArgumentsPerToken = true,
        };
        var attackFile = new Option<string?>("--attack-file") { Description = "your own attacks, one JSON object per line: {\"name\", \"template\": \"… {prompt} …\"}, {\"name\", \"messages\": [...]} or {\"name\", \"prefill\": \"…\"}" };
        var prefillText = new Option<string>("--prefill-text") { Description = "the prefill attack's assistant prefix", DefaultValueFactory = _ => Attacks.DefaultPrefill };
        var judge = new JudgeCommandOptions("eval safety");
        var engine = new EngineCommandOptions("eval safety", "OUTPUT/engine-cache.jsonl", judge.ApiKeyEnv);
        var system = CommandSupport.SystemPromptOption();
        var noChatTemplate = CommandSupport.NoChatTemplateOption();
        var maxNew = EvalCommand.MaxNewTokensOption(512);
        var batchSize = CommandSupport.BatchSizeOption(8, "prompts");
        var limit = EvalCommand.LimitOption("prompts of each set");
        var output = new Option<string>("--output", "-o") { Description = "run directory (may exist): responses.jsonl, safety.json, summary.md", Required = true };

        EvalSafetyJob Build(ParseResult r) => judge.Apply(r, new EvalSafetyJob
        {
            Model = r.GetValue(model),
            Adapter = r.GetValue(adapter),
            Prompts = r.GetValue(prompts) ?? [],
            Responses = r.GetValue(responses),
            Attacks = r.GetValue(attack) is { Length: > 0 } attacks ? attacks : [Attacks.None],
            AttackFile = r.GetValue(attackFile),
            PrefillText = r.GetValue(prefillText)!,
            SystemPrompt = r.GetValue(system)!,
            NoChatTemplate = r.GetValue(noChatTemplate),
            MaxNewTokens = r.GetValue(maxNew),
            BatchSize = r.GetValue(batchSize),
            Limit = r.GetValue(limit),
            OutputDir = r.GetValue(output)!,
            Engine = engine.Build(r),
        });

        var command = new JobCommand("safety", "Harmful-response rate: answer harmful prompt sets greedily, judge the answers, write responses.jsonl, safety.json and summary.md", Build)
        {
            model, adapter, prompts, responses, attack, attackFile, prefillText,
        };
        judge.AddTo(command);
        engine.AddTo(command);
        foreach (var option in new Option[] { system, noChatTemplate, maxNew, batchSize, limit, output }) command.Options.Add(option);
        command.SetAction(parseResult =>
        {
            var job = Build(parseResult);
            var result = CommandSupport.Run(parseResult, job);
            var (stdout, stderr) = (parseResult.InvocationConfiguration.Output, parseResult.InvocationConfiguration.Error);
            if (result.Replaced)
                stderr.WriteLine($"note: {job.OutputDir} held a safety evaluation of another model, adapter or judge; it is replaced");
            if (result.Reused.Count > 0)
                stderr.WriteLine($"note: {string.Join(", ", result.Reused)}: responses already in {job.OutputDir} (same model, generation settings and prompts); judged again, not generated again");
            foreach (var s in result.Evaluated)
                stdout.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"{s.Name}: harmful rate {100 * s.Counts.HarmfulRate:F1} % ({s.Counts.Harmful} of {s.Counts.Harmful + s.Counts.Safe}){(s.Counts.Unknown > 0 ? $", {s.Counts.Unknown} unknown" : "")}"));
            foreach (var a in result.Run.Attacks ?? [])
                stdout.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"attack {a.Name}: harmful rate {100 * a.Counts.HarmfulRate:F1} %, attack success rate {100 * a.AttackSuccessRate:F1} % ({a.Counts.Harmful} of {a.Counts.Total} prompts)"));
            int unknown = result.Judged.Count(j => j.Verdict == Verdict.Unknown);
            if (unknown > 0)
                stderr.WriteLine($"warning: {CommandSupport.Plural(unknown, "response")} got no verdict (unknown); they are excluded from the rates and listed in {SafetyEvaluation.ResponsesFileName}" +
                                 (result.GenerationFailures > 0 ? $" ({result.GenerationFailures} of them because the generation failed)" : ""));
            stderr.WriteLine($"{result.Judged.Count} responses judged by {result.Run.Judge}; results in {job.OutputDir}");
            return CommandSupport.GenerationExit(stderr, result.GenerationFailures, result.Judged.Count);
        });
        return command;
    }

    /// <summary>The judge options of <c>irr eval safety</c>, which <c>irr sweep</c> takes too, with the same meaning (<see cref="EvalSafetyJob.Judge"/>: an <see cref="Irr.Eval.JudgeOptions"/>).</summary>
    internal sealed class JudgeCommandOptions
    {
        private readonly Option<string> judge = new("--judge") { Description = "keyword (offline refusal markers) or http (a judge model behind an OpenAI-compatible server)", DefaultValueFactory = _ => "keyword" };
        private readonly Option<string?> markers = new("--refusal-markers") { Description = "replace the keyword judge's refusal markers with this file's (one per line, '#' comments)" };
        private readonly Option<string?> judgeUrl = new("--judge-url") { Description = "http judge: server URL (http://host:8000, …/v1 or …/v1/chat/completions)" };
        private readonly Option<string?> judgeModel = new("--judge-model") { Description = "http judge: the model name the server serves" };
        private readonly Option<string> protocol = new("--judge-protocol") { Description = "http judge: llama-guard, md-judge or verdict", DefaultValueFactory = _ => "llama-guard" };
        private readonly Option<string?> apiKeyEnv = new("--api-key-env") { Description = "http judge and serving engine: name of the environment variable holding the API key (sent as a Bearer token to both)" };

        /// <summary>--api-key-env, which the serving engine's options share.</summary>
        public Option<string?> ApiKeyEnv => apiKeyEnv;
        private readonly Option<int> concurrency = new("--judge-concurrency") { Description = "http judge: requests in flight", DefaultValueFactory = _ => 4 };
        private readonly Option<double> timeout = new("--judge-timeout") { Description = "http judge: seconds allowed per request", DefaultValueFactory = _ => 120 };
        private readonly Option<int> retries = new("--judge-retries") { Description = "http judge: retries of a request after 429, 5xx, a timeout or a connection error", DefaultValueFactory = _ => 4 };
        private readonly Option<double> retryDelay = new("--judge-retry-delay") { Description = "http judge: seconds before the first retry (doubling; Retry-After wins)", DefaultValueFactory = _ => 1 };
        private readonly Option<string?> cache;

        /// <param name="cacheDefault">Where the verdict cache goes by default, for the help text of --judge-cache.</param>
        /// <param name="commandName">The job's command name for messages ("eval safety", "sweep").</param>
        public JudgeCommandOptions(string commandName, string cacheDefault = "OUT/judge-cache.jsonl")
        {
            this.commandName = commandName;
            cache = new("--judge-cache") { Description = $"http judge: verdict cache file (default {cacheDefault})" };
        }

        private readonly string commandName;

        /// <summary>Adds the options to <paramref name="command"/>.</summary>
        public void AddTo(Command command)
        {
            foreach (var option in new Option[] { judge, markers, judgeUrl, judgeModel, protocol, apiKeyEnv, concurrency, timeout, retries, retryDelay, cache })
                command.Options.Add(option);
        }

        /// <summary><paramref name="job"/> with the judge the options describe.</summary>
        public EvalSafetyJob Apply(ParseResult r, EvalSafetyJob job) => job with
        {
            // A parse with errors (which the command reports instead of running) gives no defaults: the options' own then.
            Judge = Irr.Eval.JudgeOptions.Of(commandName, r.GetValue(judge) ?? "keyword", r.GetValue(markers), r.GetValue(judgeUrl), r.GetValue(judgeModel), r.GetValue(protocol) ?? "llama-guard",
                EngineCommandOptions.Http(r, concurrency, timeout, retries, retryDelay, apiKeyEnv), r.GetValue(cache)),
        };
    }
}
