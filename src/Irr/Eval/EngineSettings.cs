using Irr.Jobs;

namespace Irr.Eval;

/// <summary>
/// The serving-engine options as the command line and a recipe give them (<c>--engine-url --engine-model</c>, or
/// <c>--engine-serve [--engine-serve-adapter] [--engine-serve-timeout]</c>, then <c>--engine-api</c>, the HTTP settings and
/// <c>--api-key-env</c>), declared once for every job that generates (<c>irr generate</c>, <c>irr eval safety</c>,
/// <c>irr eval task</c>, <c>irr sweep</c>), which holds it as an <see cref="OptionsAttribute"/> property. <see cref="ToEngine"/>
/// resolves it to the variant the session runs (<see cref="RunningEngine"/> or <see cref="ServedEngine"/>). The answer cache
/// (<c>--engine-cache</c>) is each job's own option, since its default place is the job's (docs/EVAL.md, "Generating with a
/// serving engine").
/// </summary>
public sealed record EngineSettings
{
    /// <summary>Why a recipe may not give <c>engine-serve</c> (<see cref="OptionAttribute.CommandLineOnly"/>).</summary>
    public const string ServeCommandLineOnly = "runs a command, and irr never runs a command read from a file; start the server yourself and give engine-url and engine-model, or give engine-serve on the command line";

    /// <summary>Why a recipe may not give <c>engine-serve-adapter</c>.</summary>
    public const string ServeAdapterCommandLineOnly = "runs a command, and irr never runs a command read from a file; start the server yourself and give engine-url and engine-model, or give engine-serve-adapter on the command line";

    /// <summary>The running server's URL, or null (<see cref="RunningEngine.Url"/>).</summary>
    [Option("generate through an OpenAI-compatible server (vLLM …) instead of loading the weights: its URL (http://host:8000, …/v1 or an endpoint); --model is then read for its tokenizer, chat template and EOS ids only",
        Name = "engine-url")]
    public string? Url { get; init; }

    /// <summary>The model's name as the server serves it, or null (<see cref="EngineOptions.Model"/>).</summary>
    [Option("serving engine: the model name the server serves (vllm serve DIR --served-model-name NAME)", Name = "engine-model")]
    public string? Model { get; init; }

    /// <summary>The command that serves the model, or null (<see cref="ServedEngine.Serve"/>).</summary>
    [Option("serving engine: a command that serves the model, which irr starts, waits for (GET /v1/models) and stops, instead of --engine-url: " +
            "e.g. \"vllm serve {model} --served-model-name {name} --port {port}\" ({adapter}: the adapter directory); run by /bin/sh with the placeholders shell-quoted; its output goes to engine-serve.log",
        Name = "engine-serve", CommandLineOnly = ServeCommandLineOnly)]
    public string? Serve { get; init; }

    /// <summary>The command that serves the model with a LoRA adapter, or null (<see cref="ServedEngine.ServeAdapter"/>).</summary>
    [Option("serving engine: the command that serves a model with a LoRA adapter, when --engine-serve's cannot: e.g. \"vllm serve {model} --enable-lora --lora-modules {name}={adapter} --port {port}\"",
        Name = "engine-serve-adapter", CommandLineOnly = ServeAdapterCommandLineOnly)]
    public string? ServeAdapter { get; init; }

    /// <summary>Seconds a started server may take to come up (<see cref="ServedEngine.ServeTimeout"/>).</summary>
    [Option("serving engine: seconds an --engine-serve server may take to come up", Name = "engine-serve-timeout", Fingerprinted = false)]
    public double ServeTimeout { get; init; } = 900;

    /// <summary><see cref="EngineOptions.Completions"/> or <see cref="EngineOptions.Chat"/> (<see cref="EngineOptions.Api"/>).</summary>
    [Option("serving engine: completions (the prompt rendered here with the model's chat template, as local generation) or chat (the server applies its template)", Name = "engine-api")]
    public string Api { get; init; } = EngineOptions.Completions;

    /// <summary>Requests in flight (<see cref="HttpSettings.Concurrency"/>).</summary>
    [Option("serving engine: requests in flight", Name = "engine-concurrency", Fingerprinted = false)]
    public int Concurrency { get; init; } = HttpSettings.EngineDefaults.Concurrency;

    /// <summary>Seconds allowed per request (<see cref="HttpSettings.Timeout"/>).</summary>
    [Option("serving engine: seconds allowed per request", Name = "engine-timeout", Fingerprinted = false)]
    public double Timeout { get; init; } = HttpSettings.EngineDefaults.Timeout;

    /// <summary>Retries of a request (<see cref="HttpSettings.Retries"/>).</summary>
    [Option("serving engine: retries of a request after 429, 5xx, a timeout or a connection error", Name = "engine-retries", Fingerprinted = false)]
    public int Retries { get; init; } = HttpSettings.EngineDefaults.Retries;

    /// <summary>Seconds before the first retry (<see cref="HttpSettings.RetryDelay"/>).</summary>
    [Option("serving engine: seconds before the first retry (doubling; Retry-After wins)", Name = "engine-retry-delay", Fingerprinted = false)]
    public double RetryDelay { get; init; } = HttpSettings.EngineDefaults.RetryDelay;

    /// <summary>The API key's environment variable (<see cref="HttpSettings.ApiKeyEnv"/>); one option with the HTTP judge's where a job has both (<see cref="JudgeSettings.ApiKeyEnv"/>).</summary>
    [Option("serving engine: name of the environment variable holding the API key (sent as a Bearer token)", Fingerprinted = false)]
    public string? ApiKeyEnv { get; init; }

    /// <summary>Whether an engine option other than <see cref="ApiKeyEnv"/> (which the judge shares) differs from its default.</summary>
    public bool Given => this with { ApiKeyEnv = null } != new EngineSettings();

    /// <summary>
    /// The engine these options describe: served when a serve command is given, else running (a missing URL is reported by
    /// <see cref="EngineOptions.Validate"/>), with <paramref name="cache"/> as its answer cache.
    /// </summary>
    /// <exception cref="IrrException">Both a URL and a serve command are given.</exception>
    public EngineOptions ToEngine(string command, string? cache) => EngineOptions.Of(command, Url, Serve, ServeAdapter) switch
    {
        ServedEngine served => served with { ServeTimeout = ServeTimeout },
        var running => running,
    } with
    {
        Model = Model ?? "",
        Api = Api,
        Http = new HttpSettings { Concurrency = Concurrency, Timeout = Timeout, Retries = Retries, RetryDelay = RetryDelay, ApiKeyEnv = ApiKeyEnv },
        Cache = cache,
    };

    /// <summary>
    /// The engine a job generates with: one given in memory (<paramref name="engine"/>, library callers and the sweep), else
    /// the one its options describe when any is given (<paramref name="settings"/> or <paramref name="cache"/>, so that a
    /// missing engine-url is reported rather than ignored), else none (local generation).
    /// </summary>
    /// <param name="command">The job's command, for messages.</param>
    /// <param name="engine">The engine given in memory, or null.</param>
    /// <param name="settings">The engine options given, or null.</param>
    /// <param name="cache">The job's <c>--engine-cache</c>, or null.</param>
    /// <param name="keyShared">Whether <c>--api-key-env</c> has another use in the job (the HTTP judge's); else it needs an engine.</param>
    /// <exception cref="IrrException">The engine is given both ways, both a URL and a serve command are given, or <c>--api-key-env</c> is given alone where only the engine uses it.</exception>
    public static EngineOptions? Resolve(string command, EngineOptions? engine, EngineSettings? settings, string? cache, bool keyShared)
    {
        // A record the binder made has an option given: an engine option (even at its default value), unless only the key
        // variable differs, which the judge may share.
        bool given = settings is not null && (settings.Given || settings.ApiKeyEnv is null) || cache is not null;
        if (engine is not null)
        {
            Validation.Require(!given, command, "the serving engine is given in memory and as options; give one");
            return engine;
        }
        if (given) return (settings ?? new EngineSettings()).ToEngine(command, cache);
        Validation.Require(keyShared || settings?.ApiKeyEnv is null, command, "api-key-env applies with engine-url (the key of a serving engine)");
        return null;
    }
}
