using Irr.Jobs;

namespace Irr.Eval;

/// <summary>
/// The judge options as the command line and a recipe give them (<c>--judge</c>, the keyword judge's
/// <c>--refusal-markers</c>, the HTTP judge's <c>--judge-url --judge-model --judge-protocol</c>, its HTTP settings and
/// <c>--api-key-env</c>), declared once for the jobs that judge (<c>irr eval safety</c>, <c>irr sweep</c>), which hold it
/// as an <see cref="OptionsAttribute"/> property. <see cref="ToJudge"/> resolves it to the variant
/// (<see cref="KeywordJudgeOptions"/> or <see cref="HttpJudgeOptions"/>). The verdict cache (<c>--judge-cache</c>) is each
/// job's own option, since its default place is the job's.
/// </summary>
public sealed record JudgeSettings
{
    /// <summary><c>keyword</c> or <c>http</c> (<see cref="JudgeOptions.Kind"/>).</summary>
    [Option("keyword (offline refusal markers) or http (a judge model behind an OpenAI-compatible server)")]
    public string Judge { get; init; } = "keyword";

    /// <summary>The keyword judge's markers file, or null (<see cref="KeywordJudgeOptions.RefusalMarkers"/>).</summary>
    [Option("replace the keyword judge's refusal markers with this file's (one per line, '#' comments)", Kind = OptionKind.Input)]
    public string? RefusalMarkers { get; init; }

    /// <summary>The HTTP judge's server, or null (<see cref="HttpJudgeOptions.Url"/>).</summary>
    [Option("http judge: server URL (http://host:8000, …/v1 or …/v1/chat/completions)", Name = "judge-url")]
    public string? Url { get; init; }

    /// <summary>The HTTP judge's model name, or null (<see cref="HttpJudgeOptions.Model"/>).</summary>
    [Option("http judge: the model name the server serves", Name = "judge-model")]
    public string? Model { get; init; }

    /// <summary>llama-guard, md-judge, verdict or wildguard (<see cref="HttpJudgeOptions.Protocol"/>).</summary>
    [Option("http judge: " + JudgeProtocols.Names + " (wildguard also gives the refusal verdict of over-refusal)", Name = "judge-protocol")]
    public string Protocol { get; init; } = "llama-guard";

    /// <summary>The API key's environment variable (<see cref="HttpSettings.ApiKeyEnv"/>); one option with the serving engine's (<see cref="EngineSettings.ApiKeyEnv"/>).</summary>
    [Option("http judge and serving engine: name of the environment variable holding the API key (sent as a Bearer token to both)", Fingerprinted = false)]
    public string? ApiKeyEnv { get; init; }

    /// <summary>Requests in flight (<see cref="HttpSettings.Concurrency"/>).</summary>
    [Option("http judge: requests in flight", Name = "judge-concurrency", Fingerprinted = false)]
    public int Concurrency { get; init; } = HttpSettings.JudgeDefaults.Concurrency;

    /// <summary>Seconds allowed per request (<see cref="HttpSettings.Timeout"/>).</summary>
    [Option("http judge: seconds allowed per request", Name = "judge-timeout", Fingerprinted = false)]
    public double Timeout { get; init; } = HttpSettings.JudgeDefaults.Timeout;

    /// <summary>Retries of a request (<see cref="HttpSettings.Retries"/>).</summary>
    [Option("http judge: retries of a request after 429, 5xx, a timeout or a connection error", Name = "judge-retries", Fingerprinted = false)]
    public int Retries { get; init; } = HttpSettings.JudgeDefaults.Retries;

    /// <summary>Seconds before the first retry (<see cref="HttpSettings.RetryDelay"/>).</summary>
    [Option("http judge: seconds before the first retry (doubling; Retry-After wins)", Name = "judge-retry-delay", Fingerprinted = false)]
    public double RetryDelay { get; init; } = HttpSettings.JudgeDefaults.RetryDelay;

    /// <summary>The judge these options describe, with <paramref name="cache"/> as the HTTP judge's verdict cache (<see cref="JudgeOptions.Of"/>).</summary>
    /// <exception cref="IrrException">An unknown kind, or an option of the other judge is given.</exception>
    public JudgeOptions ToJudge(string command, string? cache) => JudgeOptions.Of(command, Judge, RefusalMarkers, Url, Model, Protocol,
        new HttpSettings { Concurrency = Concurrency, Timeout = Timeout, Retries = Retries, RetryDelay = RetryDelay, ApiKeyEnv = ApiKeyEnv }, cache);
}
