using System.Text;
using Irr.Jobs;

namespace Irr.Eval;

/// <summary>
/// A serving engine to generate with instead of loading the weights (<see cref="ServingEngine"/>): an OpenAI-compatible
/// server (vLLM, llama.cpp's server, TGI) serving the model. One record that every generating job takes as its
/// <c>Engine</c> (<see cref="GenerateJob"/>, <see cref="EvalSafetyJob"/>, <see cref="EvalTaskJob"/>), so that a caller
/// running several passes it through unchanged. The names of the command-line options are the properties' with
/// <c>engine-</c> before them (<c>--engine-url</c> …), except <see cref="ApiKeyEnv"/> (<c>--api-key-env</c>).
/// </summary>
public sealed record EngineOptions
{
    /// <summary>The completions API: the prompt rendered here with the model's chat template, sent as text (the default).</summary>
    public const string Completions = "completions";

    /// <summary>The chat-completions API: the messages sent, the server applies its chat template.</summary>
    public const string Chat = "chat";

    /// <summary>The server: its base (<c>http://host:8000</c>), its <c>/v1</c>, or an endpoint URL (<c>…/v1/completions</c>); empty with <see cref="Serve"/>.</summary>
    public string Url { get; init; } = "";

    /// <summary>
    /// The model's name as the server serves it (vLLM's <c>--served-model-name</c>; the "model" field of each request).
    /// With <see cref="Serve"/>, the name the started server is given ({name}); empty for <see cref="DefaultServedName"/>.
    /// </summary>
    public string Model { get; init; } = "";

    /// <summary>
    /// A command that serves the model, which irr starts, waits for and stops (<see cref="EngineServer"/>), instead of
    /// <see cref="Url"/>: e.g. <c>vllm serve {model} --served-model-name {name} --port {port}</c>. Never read from a file.
    /// </summary>
    public string? Serve { get; init; }

    /// <summary>
    /// The command that serves a model with a LoRA adapter, when it must differ from <see cref="Serve"/>'s: e.g.
    /// <c>vllm serve {model} --enable-lora --lora-modules {name}={adapter} --port {port}</c>. Null: <see cref="Serve"/>
    /// serves adapters too (it then must place {adapter}).
    /// </summary>
    public string? ServeAdapter { get; init; }

    /// <summary>The serve command for a model with (or without) an adapter.</summary>
    /// <exception cref="IrrException">No serve command fits (the message says which option to give).</exception>
    public string ServeCommand(bool adapter) =>
        adapter ? ServeAdapter ?? (Serve is { } s && s.Contains("{adapter}", StringComparison.Ordinal) ? s
                : throw new IrrException("a model with an adapter is evaluated: give engine-serve-adapter (e.g. vllm serve {model} --enable-lora --lora-modules {name}={adapter} --port {port})"))
            : Serve is null ? throw new IrrException("a model without an adapter is evaluated: give engine-serve (e.g. vllm serve {model} --served-model-name {name} --port {port})")
            : Serve.Contains("{adapter}", StringComparison.Ordinal)
                ? throw new IrrException("a model without an adapter is evaluated, and engine-serve places {adapter}, which would be empty: give engine-serve for full models " +
                                         "(vllm serve {model} --served-model-name {name} --port {port}) and engine-serve-adapter for models with an adapter")
                : Serve;

    /// <summary>Whether irr starts the server itself (<see cref="Serve"/> or <see cref="ServeAdapter"/>).</summary>
    public bool Serves => Serve is not null || ServeAdapter is not null;

    /// <summary>With <see cref="Serve"/>: seconds the server may take to answer <c>GET /v1/models</c> after it is started.</summary>
    public double ServeTimeout { get; init; } = 900;

    /// <summary>
    /// The name answers are cached under, when it differs from <see cref="Model"/>: a server irr started is served under a
    /// name unique to the run (<see cref="EngineServer.ServedModel"/>), and cached under the stable one it was started for,
    /// so that a rerun finds its answers. Null: <see cref="Model"/>. Set by <see cref="EngineServer.Serving"/>.
    /// </summary>
    public string? CacheName { get; init; }

    /// <summary>The served name when <see cref="Serve"/> is given without <see cref="Model"/>.</summary>
    public const string DefaultServedName = "irr";

    /// <summary>The name requests give as "model": <see cref="Model"/>, or with <see cref="Serve"/> and no model, <see cref="DefaultServedName"/>.</summary>
    public string ServedName => Model.Length > 0 || !Serves ? Model : DefaultServedName;

    /// <summary><see cref="Completions"/> (default) or <see cref="Chat"/>.</summary>
    public string Api { get; init; } = Completions;

    /// <summary>Requests in flight at most.</summary>
    public int Concurrency { get; init; } = 8;

    /// <summary>Seconds allowed per request (one attempt, connection to last byte).</summary>
    public double Timeout { get; init; } = 300;

    /// <summary>Retries of a request after HTTP 429, 5xx, a timeout or a connection error.</summary>
    public int Retries { get; init; } = 4;

    /// <summary>Seconds before the first retry; doubling with each further one (a Retry-After header wins).</summary>
    public double RetryDelay { get; init; } = 1;

    /// <summary>The API key itself (library callers), sent as a Bearer token; never written anywhere. Wins over <see cref="ApiKeyEnv"/>.</summary>
    public string? ApiKey { get; init; }

    /// <summary>The name of the environment variable holding the API key, or null (no key unless <see cref="ApiKey"/>).</summary>
    public string? ApiKeyEnv { get; init; }

    /// <summary>The answer cache file; null for the job's default (<c>OUTPUT/engine-cache.jsonl</c>, or <c>OUTPUT.engine-cache.jsonl</c> next to <c>irr generate</c>'s file).</summary>
    public string? Cache { get; init; }

    /// <summary>What the answers are recorded as generated by: <c>API:MODEL</c>, e.g. <c>completions:my-model</c>.</summary>
    public string Name => $"{Api}:{CacheName ?? ServedName}";

    /// <summary>Checks the options; each message is one line naming the option.</summary>
    /// <exception cref="IrrException">An option is missing or out of range.</exception>
    /// <param name="command">The job's command, for messages.</param>
    /// <param name="hasAdapter">Whether a model is evaluated with an adapter (a serve command must then place it: {adapter}).</param>
    /// <param name="hasFullModel">Whether a model is evaluated without an adapter.</param>
    public void Validate(string command, bool hasAdapter = false, bool hasFullModel = true)
    {
        if (Serves)
        {
            Validation.Require(string.IsNullOrWhiteSpace(Url), command, "give engine-url (a running server) or engine-serve (a command irr starts), not both");
            try
            {
                if (Serve is not null) EngineServer.Check(Serve, hasAdapter: false);
                if (ServeAdapter is not null) EngineServer.Check(ServeAdapter, hasAdapter: true, "engine-serve-adapter");
                if (hasAdapter) EngineServer.Check(ServeCommand(adapter: true), hasAdapter: true);
                if (hasFullModel) ServeCommand(adapter: false);
            }
            catch (IrrException e) { throw new IrrException($"{command}: {e.Message}", e); }
            Validation.Require(ServeTimeout > 0, command, $"engine-serve-timeout must be positive, not {ServeTimeout}");
        }
        else
        {
            Validation.Require(!string.IsNullOrWhiteSpace(Url), command, "engine-url is missing: the serving engine's server URL (e.g. http://localhost:8000), or engine-serve");
            Validation.Require(Uri.TryCreate(Url, UriKind.Absolute, out var uri) && uri.Scheme is "http" or "https", command,
                $"engine-url must be an http:// or https:// URL, not \"{Url}\"");
            Validation.Require(!string.IsNullOrWhiteSpace(Model), command, "engine-model must name the model the server serves (e.g. vllm serve DIR --served-model-name NAME)");
        }
        Validation.Require(Api is Completions or Chat, command, $"engine-api must be completions or chat, not \"{Api}\"");
        Validation.RequireAtLeast(command, "engine-concurrency", Concurrency, 1);
        Validation.Require(Timeout > 0, command, $"engine-timeout must be positive, not {Timeout}");
        Validation.Require(Retries >= 0, command, $"engine-retries must not be negative, not {Retries}");
        Validation.Require(RetryDelay >= 0, command, $"engine-retry-delay must not be negative, not {RetryDelay}");
    }

    /// <summary>
    /// Refuses an option that only applies to local generation when an engine is given: <paramref name="isDefault"/>
    /// false means the option was set to something else than its default.
    /// </summary>
    /// <exception cref="IrrException">The option is set with an engine.</exception>
    public static void RequireLocalDefault(EngineOptions? engine, string command, bool isDefault, string option, string why) =>
        Validation.Require(engine is null || isDefault, command, $"{option} applies to local generation, not with a serving engine ({why})");

    /// <summary>The key: <see cref="ApiKey"/>, else the value of <see cref="ApiKeyEnv"/>'s variable, else null.</summary>
    /// <exception cref="IrrException">The variable is named but not set.</exception>
    public string? ResolveApiKey(string command) => ApiKey ?? OpenAiClient.KeyFromEnvironment(command, ApiKeyEnv);

    // Records print their properties; the key is not printed.
    private bool PrintMembers(StringBuilder builder)
    {
        builder.Append($"Url = {Url}, Model = {Model}, CacheName = {CacheName ?? "null"}, Serve = {Serve ?? "null"}, ServeAdapter = {ServeAdapter ?? "null"}, ServeTimeout = {ServeTimeout}, Api = {Api}, Concurrency = {Concurrency}, Timeout = {Timeout}, Retries = {Retries}, RetryDelay = {RetryDelay}, ");
        builder.Append($"ApiKey = {(ApiKey is null ? "null" : "***")}, ApiKeyEnv = {ApiKeyEnv ?? "null"}, Cache = {Cache ?? "null"}");
        return true;
    }
}
