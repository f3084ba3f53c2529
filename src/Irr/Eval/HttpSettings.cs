using System.Text;
using Irr.Jobs;

namespace Irr.Eval;

/// <summary>
/// How irr talks to an OpenAI-compatible server (vLLM, llama.cpp's server, TGI): requests in flight, the time allowed
/// per request, the retries and the API key. One record for the serving engine (<see cref="EngineOptions.Http"/>, options
/// <c>--engine-concurrency --engine-timeout --engine-retries --engine-retry-delay</c>) and the HTTP judge
/// (<see cref="HttpJudgeOptions.Http"/>, <c>--judge-concurrency …</c>); both share <c>--api-key-env</c>. The
/// <see cref="OpenAiClient"/> sends with it.
/// </summary>
public sealed record HttpSettings
{
    /// <summary>The serving engine's defaults: 8 requests in flight, 300 s each, 4 retries from 1 s.</summary>
    public static HttpSettings EngineDefaults { get; } = new();

    /// <summary>The HTTP judge's defaults: 4 requests in flight, 120 s each, 4 retries from 1 s.</summary>
    public static HttpSettings JudgeDefaults { get; } = new() { Concurrency = 4, Timeout = 120 };

    /// <summary>Requests in flight at most, at least 1 (<c>--engine-concurrency</c>, <c>--judge-concurrency</c>).</summary>
    public int Concurrency { get; init; } = 8;

    /// <summary>Seconds allowed per request: one attempt, connection to last byte; positive (<c>--engine-timeout</c>, <c>--judge-timeout</c>).</summary>
    public double Timeout { get; init; } = 300;

    /// <summary>Retries of a request after HTTP 429, 5xx, a timeout or a connection error; not negative (<c>--engine-retries</c>, <c>--judge-retries</c>).</summary>
    public int Retries { get; init; } = 4;

    /// <summary>
    /// Seconds before the first retry, doubling with each further one, at most <see cref="OpenAiClient.MaxRetryDelay"/>
    /// (a Retry-After header wins); not negative (<c>--engine-retry-delay</c>, <c>--judge-retry-delay</c>).
    /// </summary>
    public double RetryDelay { get; init; } = 1;

    /// <summary>The API key itself (library callers), sent as a Bearer token; never written anywhere. Wins over <see cref="ApiKeyEnv"/>.</summary>
    public string? ApiKey { get; init; }

    /// <summary>The name of the environment variable holding the API key, or null: no key unless <see cref="ApiKey"/> (<c>--api-key-env</c>).</summary>
    public string? ApiKeyEnv { get; init; }

    /// <summary>Checks the settings; each message is one line naming the option (<paramref name="role"/>-concurrency …).</summary>
    /// <param name="command">The job's command, for messages.</param>
    /// <param name="role">The options' prefix: <c>engine</c> or <c>judge</c>.</param>
    /// <exception cref="IrrException">A setting is out of range.</exception>
    public void Validate(string command, string role)
    {
        Validation.RequireAtLeast(command, $"{role}-concurrency", Concurrency, 1);
        Validation.Require(Timeout > 0, command, $"{role}-timeout must be positive, not {Timeout}");
        Validation.Require(Retries >= 0, command, $"{role}-retries must not be negative, not {Retries}");
        Validation.Require(RetryDelay >= 0, command, $"{role}-retry-delay must not be negative, not {RetryDelay}");
    }

    /// <summary>The key: <see cref="ApiKey"/>, else the value of <see cref="ApiKeyEnv"/>'s variable, else null.</summary>
    /// <exception cref="IrrException">The variable is named but not set (the message names <paramref name="command"/>).</exception>
    public string? ResolveApiKey(string command) => ApiKey ?? OpenAiClient.KeyFromEnvironment(command, ApiKeyEnv);

    /// <summary>These settings with the key resolved (<see cref="ResolveApiKey"/>), so that a message about a missing variable names <paramref name="command"/>.</summary>
    /// <exception cref="IrrException">The variable is named but not set.</exception>
    public HttpSettings WithResolvedKey(string command) => this with { ApiKey = ResolveApiKey(command) };

    // Records print their properties; the key is not printed.
    private bool PrintMembers(StringBuilder builder)
    {
        builder.Append($"Concurrency = {Concurrency}, Timeout = {Timeout}, Retries = {Retries}, RetryDelay = {RetryDelay}, ");
        builder.Append($"ApiKey = {(ApiKey is null ? "null" : "***")}, ApiKeyEnv = {ApiKeyEnv ?? "null"}");
        return true;
    }
}
