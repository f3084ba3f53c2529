using System.CommandLine;
using Irr.Eval;

namespace Irr.Cli;

/// <summary>
/// TRANSITIONAL (issue 25): the serving-engine options of <c>irr sweep</c>'s hand-built command, deleted when the sweep is
/// converted to its job's schema (<c>irr generate</c>, <c>irr eval safety</c> and <c>irr eval task</c> declare them once
/// in <see cref="EngineSettings"/>):
/// <c>--engine-url --engine-model</c> or <c>--engine-serve [--engine-serve-adapter] [--engine-serve-timeout]</c>, then
/// <c>[--engine-api] [--engine-concurrency] [--engine-timeout] [--engine-retries] [--engine-retry-delay] [--engine-cache]</c> and <c>--api-key-env</c> (shared with the HTTP judge where there is one),
/// read into one <see cref="EngineOptions"/> (a <see cref="RunningEngine"/> or a <see cref="ServedEngine"/>, with its <see cref="HttpSettings"/>) (docs/EVAL.md, "Generating with a serving engine").
/// </summary>
internal sealed class EngineCommandOptions
{
    private readonly Option<string?> url = new("--engine-url") { Description = "generate through an OpenAI-compatible server (vLLM …) instead of loading the weights: its URL (http://host:8000, …/v1 or an endpoint); --model is then read for its tokenizer, chat template and EOS ids only" };
    private readonly Option<string?> model = new("--engine-model") { Description = "serving engine: the model name the server serves (vllm serve DIR --served-model-name NAME)" };
    private readonly Option<string> api = new("--engine-api") { Description = "serving engine: completions (the prompt rendered here with the model's chat template, as local generation) or chat (the server applies its template)", DefaultValueFactory = _ => EngineOptions.Completions };
    private readonly Option<int> concurrency = new("--engine-concurrency") { Description = "serving engine: requests in flight", DefaultValueFactory = _ => 8 };
    private readonly Option<double> timeout = new("--engine-timeout") { Description = "serving engine: seconds allowed per request", DefaultValueFactory = _ => 300 };
    private readonly Option<int> retries = new("--engine-retries") { Description = "serving engine: retries of a request after 429, 5xx, a timeout or a connection error", DefaultValueFactory = _ => 4 };
    private readonly Option<double> retryDelay = new("--engine-retry-delay") { Description = "serving engine: seconds before the first retry (doubling; Retry-After wins)", DefaultValueFactory = _ => 1 };
    private readonly Option<string?> serve = new("--engine-serve") { Description = "serving engine: a command that serves the model, which irr starts, waits for (GET /v1/models) and stops, instead of --engine-url: e.g. \"vllm serve {model} --served-model-name {name} --port {port}\" ({adapter}: the adapter directory); run by /bin/sh with the placeholders shell-quoted; its output goes to engine-serve.log" };
    private readonly Option<string?> serveAdapter = new("--engine-serve-adapter") { Description = "serving engine: the command that serves a model with a LoRA adapter, when --engine-serve's cannot: e.g. \"vllm serve {model} --enable-lora --lora-modules {name}={adapter} --port {port}\"" };
    private readonly Option<double> serveTimeout = new("--engine-serve-timeout") { Description = "serving engine: seconds an --engine-serve server may take to come up", DefaultValueFactory = _ => 900 };
    private readonly Option<string?> cache;
    private readonly Option<string?> apiKeyEnv;
    private readonly bool ownsApiKeyEnv;
    private readonly string commandName;

    /// <param name="commandName">The job's command name for messages ("generate", "eval task").</param>
    /// <param name="cacheDefault">Where the answer cache goes by default, for the help text of --engine-cache.</param>
    /// <param name="sharedApiKeyEnv">The command's --api-key-env when it has one already (the judge's); else the engine adds its own.</param>
    public EngineCommandOptions(string commandName, string cacheDefault, Option<string?>? sharedApiKeyEnv = null)
    {
        this.commandName = commandName;
        cache = new("--engine-cache") { Description = $"serving engine: answer cache file (default {cacheDefault})" };
        ownsApiKeyEnv = sharedApiKeyEnv is null;
        apiKeyEnv = sharedApiKeyEnv ?? new("--api-key-env") { Description = "serving engine: name of the environment variable holding the API key (sent as a Bearer token)" };
    }

    /// <summary>The HTTP settings that <c>--PREFIX-concurrency --PREFIX-timeout --PREFIX-retries --PREFIX-retry-delay</c> and <c>--api-key-env</c> give.</summary>
    public static HttpSettings Http(ParseResult r, Option<int> concurrency, Option<double> timeout, Option<int> retries, Option<double> retryDelay, Option<string?> apiKeyEnv) => new()
    {
        Concurrency = r.GetValue(concurrency),
        Timeout = r.GetValue(timeout),
        Retries = r.GetValue(retries),
        RetryDelay = r.GetValue(retryDelay),
        ApiKeyEnv = r.GetValue(apiKeyEnv),
    };

    // Every engine option but --api-key-env.
    private Option[] Options => [url, model, serve, serveAdapter, serveTimeout, api, concurrency, timeout, retries, retryDelay, cache];

    /// <summary>Adds the options to <paramref name="command"/> (--api-key-env only when it is the engine's own).</summary>
    public void AddTo(Command command)
    {
        foreach (var option in Options)
            command.Options.Add(option);
        if (ownsApiKeyEnv) command.Options.Add(apiKeyEnv);
    }

    /// <summary>
    /// The engine the options describe, or null when no engine option was given. Any engine option given makes one, so
    /// that a missing --engine-url or --engine-model is reported (<see cref="EngineOptions.Validate"/>) rather than ignored.
    /// </summary>
    /// <exception cref="IrrException">--api-key-env is given to a command without an engine where it has no other use.</exception>
    public EngineOptions? Build(ParseResult r)
    {
        bool given = Options.Any(o => r.GetResult(o) is { Implicit: false });
        if (!given)
        {
            if (ownsApiKeyEnv && r.GetValue(apiKeyEnv) is not null)
                throw new IrrException($"{commandName}: api-key-env applies with engine-url (the key of a serving engine)");
            return null;
        }
        return EngineOptions.Of(commandName, r.GetValue(url), r.GetValue(serve), r.GetValue(serveAdapter)) switch
        {
            ServedEngine served => served with { ServeTimeout = r.GetValue(serveTimeout) },
            var running => running,
        } with
        {
            Model = r.GetValue(model) ?? "",
            Api = r.GetValue(api)!,
            Http = Http(r, concurrency, timeout, retries, retryDelay, apiKeyEnv),
            Cache = r.GetValue(cache),
        };
    }
}

/// <summary>TRANSITIONAL (issue 25): the judge options of <c>irr sweep</c>'s hand-built command (<see cref="JudgeSettings"/> declares them for the converted commands).</summary>
internal static partial class EvalSafetyCommand
{
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
