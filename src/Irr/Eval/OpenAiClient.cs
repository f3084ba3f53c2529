using System.Net.Http.Headers;
using System.Text;

namespace Irr.Eval;

/// <summary>How an <see cref="OpenAiClient"/> talks to a server: the key, the concurrency, the timeout and the retries (the HTTP judge's options extend these).</summary>
public record OpenAiClientOptions
{
    /// <summary>What the server is to the user ("judge", "engine"), for messages: "judge endpoint URL answered HTTP 401 …".</summary>
    public string Role { get; init; } = "server";

    /// <summary>Sent as <c>Authorization: Bearer …</c> when not null; never written anywhere (<see cref="OpenAiClient.Redact"/>).</summary>
    public string? ApiKey { get; init; }

    /// <summary>Requests in flight at most (at least 1).</summary>
    public int Concurrency { get; init; } = 4;

    /// <summary>Time allowed for one attempt (connection to last byte).</summary>
    public TimeSpan Timeout { get; init; } = TimeSpan.FromSeconds(120);

    /// <summary>Attempts after the first when a request fails with 429, a 5xx status, a timeout or a connection error.</summary>
    public int MaxRetries { get; init; } = 4;

    /// <summary>The wait before the first retry; it doubles with each further retry. A Retry-After header, when present, is used instead (capped at <see cref="MaxRetryDelay"/>).</summary>
    public TimeSpan RetryBaseDelay { get; init; } = TimeSpan.FromSeconds(1);

    /// <summary>The longest wait between attempts.</summary>
    public TimeSpan MaxRetryDelay { get; init; } = TimeSpan.FromSeconds(60);

    /// <summary>Prints the options without the key.</summary>
    protected virtual bool PrintMembers(StringBuilder builder)
    {
        builder.Append($"Role = {Role}, ApiKey = {(ApiKey is null ? "null" : "***")}, Concurrency = {Concurrency}, Timeout = {Timeout}, ");
        builder.Append($"MaxRetries = {MaxRetries}, RetryBaseDelay = {RetryBaseDelay}, MaxRetryDelay = {MaxRetryDelay}");
        return true;
    }
}

/// <summary>The outcome of one <see cref="OpenAiClient.PostAsync"/>: the body of a 2xx answer, or why there is none after every attempt.</summary>
/// <param name="Body">The response body of a successful (2xx) answer, or null.</param>
/// <param name="Failure">When <see cref="Body"/> is null: why the last attempt failed ("HTTP 503 …", "no answer within 300 s", redacted).</param>
/// <param name="Attempts">Attempts made.</param>
public readonly record struct OpenAiReply(string? Body, string? Failure, int Attempts);

/// <summary>
/// The HTTP machinery shared by everything that talks to an OpenAI-compatible server (vLLM, llama.cpp's server, TGI):
/// the HTTP judge (<see cref="HttpJudge"/>) and the serving engine (<see cref="ServingEngine"/>). All instances send
/// through one process-wide <see cref="HttpClient"/> (unless a handler is given, for tests); each instance lets
/// <see cref="OpenAiClientOptions.Concurrency"/> requests be in flight at once. Failures that may pass (HTTP 429,
/// 5xx, a timeout, a connection error) are retried with exponential backoff, or after the server's Retry-After;
/// other HTTP errors (400, 401, 404 …) are configuration errors (<see cref="IrrException"/>, one line naming the
/// URL and the status). The API key goes in the Authorization header and is removed from every message.
/// </summary>
public sealed class OpenAiClient : IDisposable
{
    // One connection pool for the process ("one client, not two"); timeouts are per attempt, by cancellation.
    private static readonly HttpClient Shared = new(new SocketsHttpHandler
    {
        PooledConnectionLifetime = TimeSpan.FromMinutes(5),
        Proxy = new LoopbackDirect(HttpClient.DefaultProxy),
    })
    {
        Timeout = System.Threading.Timeout.InfiniteTimeSpan,
    };

    // The environment's proxy (HTTP_PROXY …), except for this machine: .NET sends requests for 127.0.0.1 to the proxy unless
    // NO_PROXY lists it (dotnet/runtime#31680), and a cluster node's proxy cannot reach the node's own server (engine-serve's).
    private sealed class LoopbackDirect(System.Net.IWebProxy proxy) : System.Net.IWebProxy
    {
        public System.Net.ICredentials? Credentials { get => proxy.Credentials; set => proxy.Credentials = value; }

        public Uri? GetProxy(Uri destination) => proxy.GetProxy(destination);

        public bool IsBypassed(Uri host) => host.IsLoopback || proxy.IsBypassed(host);
    }

    /// <summary>The process's one connection pool, for what else talks to these servers (<see cref="EngineServer"/>'s readiness checks).</summary>
    internal static HttpClient SharedHttp => Shared;

    private readonly HttpClient _client;
    private readonly bool _ownsClient;
    private readonly SemaphoreSlim _gate;

    /// <summary>A client with the given options; <paramref name="handler"/> replaces the shared connection pool (tests).</summary>
    /// <exception cref="IrrException">An option is out of range; the message names it as ROLE-concurrency, ROLE-timeout or ROLE-retries.</exception>
    public OpenAiClient(OpenAiClientOptions options, HttpMessageHandler? handler = null)
    {
        if (options.Concurrency < 1) throw new IrrException($"{options.Role}-concurrency must be at least 1, not {options.Concurrency}");
        if (options.Timeout <= TimeSpan.Zero) throw new IrrException($"{options.Role}-timeout must be positive, not {options.Timeout.TotalSeconds} s");
        if (options.MaxRetries < 0) throw new IrrException($"{options.Role}-retries must not be negative, not {options.MaxRetries}");
        Options = options;
        _gate = new SemaphoreSlim(options.Concurrency);
        if (handler is null)
        {
            _client = Shared;
        }
        else
        {
            _client = new HttpClient(handler, disposeHandler: false) { Timeout = System.Threading.Timeout.InfiniteTimeSpan };
            _ownsClient = true;
        }
    }

    /// <summary>The options.</summary>
    public OpenAiClientOptions Options { get; }

    /// <summary>
    /// The URL of an endpoint (<c>completions</c> or <c>chat/completions</c>) of a server given as its base
    /// (<c>http://host:8000</c>), its <c>/v1</c>, or an endpoint URL itself (whose last endpoint part is replaced).
    /// </summary>
    public static Uri Endpoint(Uri url, string endpoint)
    {
        string s = url.GetLeftPart(UriPartial.Path).TrimEnd('/');
        foreach (string known in (string[])["/chat/completions", "/completions"])
            if (s.EndsWith(known, StringComparison.Ordinal))
                return new Uri(s[..^known.Length] + "/" + endpoint);
        if (s.EndsWith("/v1", StringComparison.Ordinal)) return new Uri(s + "/" + endpoint);
        return new Uri(s + "/v1/" + endpoint);
    }

    /// <summary>
    /// POSTs a JSON body, waiting for a free slot first, and retries as the class describes.
    /// </summary>
    /// <returns>The body of a 2xx answer, or why there is none after 1 + <see cref="OpenAiClientOptions.MaxRetries"/> attempts.</returns>
    /// <exception cref="IrrException">The server answered with a status other than 2xx, 429 or 5xx (a configuration error).</exception>
    /// <exception cref="OperationCanceledException"><paramref name="cancellationToken"/> was cancelled.</exception>
    public async Task<OpenAiReply> PostAsync(Uri endpoint, string json, CancellationToken cancellationToken = default)
    {
        await _gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            return await PostWithRetriesAsync(endpoint, json, cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            _gate.Release();
        }
    }

    private async Task<OpenAiReply> PostWithRetriesAsync(Uri endpoint, string json, CancellationToken cancellationToken)
    {
        string lastFailure = "";
        for (int attempt = 0; ; attempt++)
        {
            TimeSpan? retryAfter = null;
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            timeout.CancelAfter(Options.Timeout);
            try
            {
                using var message = new HttpRequestMessage(HttpMethod.Post, endpoint) { Content = new StringContent(json, Encoding.UTF8, "application/json") };
                if (Options.ApiKey is not null) message.Headers.Authorization = new AuthenticationHeaderValue("Bearer", Options.ApiKey);
                using var response = await _client.SendAsync(message, timeout.Token).ConfigureAwait(false);
                string text = await response.Content.ReadAsStringAsync(timeout.Token).ConfigureAwait(false);
                if (response.IsSuccessStatusCode) return new OpenAiReply(text, null, attempt + 1);
                int status = (int)response.StatusCode;
                if (status != 429 && status < 500)
                    throw new IrrException(Redact($"{Options.Role} endpoint {endpoint} answered HTTP {status} {response.ReasonPhrase}: {Snippet(text)}"));
                lastFailure = $"HTTP {status} {response.ReasonPhrase}";
                retryAfter = RetryAfter(response);
            }
            catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
            {
                lastFailure = $"no answer within {Options.Timeout.TotalSeconds:0.###} s";
            }
            catch (HttpRequestException e)
            {
                // .NET's own message ("An error occurred while sending the request") hides the cause: add the inner one.
                lastFailure = Redact($"request failed: {e.Message}{(e.InnerException is { } inner ? $" ({inner.Message})" : "")}");
            }
            if (attempt >= Options.MaxRetries)
                return new OpenAiReply(null, lastFailure, attempt + 1);
            var delay = retryAfter ?? Options.RetryBaseDelay * Math.Pow(2, attempt);
            await Task.Delay(delay > Options.MaxRetryDelay ? Options.MaxRetryDelay : delay, cancellationToken).ConfigureAwait(false);
        }
    }

    private static TimeSpan? RetryAfter(HttpResponseMessage response)
    {
        var header = response.Headers.RetryAfter;
        if (header?.Delta is { } delta) return delta;
        if (header?.Date is { } date) return date - DateTimeOffset.UtcNow is var d && d > TimeSpan.Zero ? d : TimeSpan.Zero;
        return null;
    }

    /// <summary>The value of the environment variable <paramref name="variable"/> (an API key), or null when no variable is named.</summary>
    /// <exception cref="IrrException">The variable is named but not set (or empty); the message names it and the api-key-env option.</exception>
    public static string? KeyFromEnvironment(string command, string? variable) =>
        variable is null ? null
        : Environment.GetEnvironmentVariable(variable) is { Length: > 0 } value ? value
        : throw new IrrException($"{command}: the environment variable {variable} (api-key-env) is not set");

    /// <summary>
    /// Runs <paramref name="body"/>(i, token) for i = 0 … <paramref name="count"/> − 1 at once (the client's gate bounds what
    /// is in flight) and waits for all. The first <see cref="IrrException"/> (a configuration error: HTTP 401, 404 …)
    /// cancels the token of the others, so requests not yet sent are not sent, and is rethrown.
    /// </summary>
    /// <exception cref="IrrException">A body failed with one.</exception>
    public static async Task ForEachAsync(int count, Func<int, CancellationToken, Task> body, CancellationToken cancellationToken)
    {
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        var tasks = Enumerable.Range(0, count).Select(async i =>
        {
            try
            {
                await body(i, stop.Token).ConfigureAwait(false);
            }
            catch (IrrException)
            {
                await stop.CancelAsync().ConfigureAwait(false);
                throw;
            }
        }).ToList();
        try
        {
            await Task.WhenAll(tasks).ConfigureAwait(false);
        }
        catch (Exception e) when (e is IrrException || (e is OperationCanceledException && !cancellationToken.IsCancellationRequested))
        {
            throw tasks.Where(t => t.IsFaulted).SelectMany(t => t.Exception!.InnerExceptions).OfType<IrrException>().First();
        }
    }

    /// <summary>"1 attempt", "3 attempts".</summary>
    public static string Attempts(int count) => count == 1 ? "1 attempt" : $"{count} attempts";

    /// <summary>The first 300 characters of a server's text, for messages.</summary>
    public static string Snippet(string text) => text.Length <= 300 ? text : text[..300] + "…";

    /// <summary><paramref name="text"/> with the API key replaced by <c>***</c>: nothing the server sends back may carry the key into a message.</summary>
    public string Redact(string text) =>
        string.IsNullOrEmpty(Options.ApiKey) ? text : text.Replace(Options.ApiKey, "***", StringComparison.Ordinal);

    /// <summary>Releases the gate (and a test handler's client); the shared connection pool stays.</summary>
    public void Dispose()
    {
        _gate.Dispose();
        if (_ownsClient) _client.Dispose();
    }
}
