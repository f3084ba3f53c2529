using System.Net.Http.Headers;
using System.Text;

namespace Irr.Eval;

/// <summary>The outcome of one <see cref="OpenAiClient.PostAsync"/>: the body of a 2xx answer, or why there is none after every attempt.</summary>
/// <param name="Body">The response body of a successful (2xx) answer, or null.</param>
/// <param name="Failure">When <see cref="Body"/> is null: why the last attempt failed ("HTTP 503 …", "no answer within 300 s", redacted).</param>
/// <param name="Attempts">Attempts made.</param>
internal readonly record struct OpenAiReply(string? Body, string? Failure, int Attempts)
{
    /// <summary>The server refused this one request (<see cref="OpenAiClient.IsPerRequestError"/>: HTTP 413, or 400/422 about its length), not asked again.</summary>
    public bool Refused { get; init; }

    /// <summary>Why there is no answer, for a record: "refused: HTTP 400 Bad Request: …" or "no answer after 3 attempts: HTTP 503 …".</summary>
    public string Reason => Refused ? RefusedPrefix + Failure : $"no answer after {OpenAiClient.Attempts(Attempts)}: {Failure}";

    /// <summary>How the reason of a refused request begins.</summary>
    public const string RefusedPrefix = "refused: ";

    /// <summary>Whether a recorded failure's reason is a refusal of the request itself (<see cref="Refused"/>), which a rerun meets again.</summary>
    public static bool IsRefusal(string? reason) => reason?.StartsWith(RefusedPrefix, StringComparison.Ordinal) == true;
}

/// <summary>
/// The HTTP machinery shared by everything that talks to an OpenAI-compatible server (vLLM, llama.cpp's server, TGI):
/// the HTTP judge (<see cref="HttpJudge"/>) and the serving engine (<see cref="ServingEngine"/>). All instances send
/// through one process-wide <see cref="HttpClient"/> (unless a handler is given, for tests); each instance lets
/// <see cref="HttpSettings.Concurrency"/> requests be in flight at once. Failures that may pass (HTTP 429,
/// 5xx, a timeout, a connection error) are retried with exponential backoff, or after the server's Retry-After.
/// An error about one request (<see cref="IsPerRequestError"/>: vLLM's HTTP 400 "This model's maximum context length is
/// …", TGI's 422, llama.cpp's "exceeds the available context size", any 413) is that request's failure
/// (<see cref="OpenAiReply.Refused"/>), not retried. Other HTTP errors (401, 403, 404 — a wrong model name or endpoint
/// path —, a 400 about a parameter …) are configuration errors (<see cref="IrrException"/>, one line naming the URL and
/// the status), and so is a server that could not be reached at all (no HTTP answer to any request yet) once the retries
/// are used up. The API key goes in the Authorization header and is removed from every message.
/// </summary>
internal sealed class OpenAiClient : IDisposable
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
    private volatile IrrException? _configurationError; // set before the gate is released, so that no request waiting for it is sent

    // Whether the server has given any HTTP answer: a connection error before that is a wrong URL or a server that is not up.
    private volatile bool _answered;

    /// <summary>
    /// A client for a server that is, to the user, <paramref name="role"/> ("judge", "engine": messages say "judge endpoint
    /// URL answered HTTP 401 …" and name the options ROLE-concurrency …), with the settings <paramref name="http"/>;
    /// <paramref name="handler"/> replaces the shared connection pool (tests).
    /// </summary>
    /// <exception cref="IrrException">A setting is out of range (the message names it as ROLE-concurrency, ROLE-timeout or ROLE-retries), or the key's variable is not set.</exception>
    public OpenAiClient(string role, HttpSettings http, HttpMessageHandler? handler = null)
    {
        if (http.Concurrency < 1) throw new IrrException($"{role}-concurrency must be at least 1, not {http.Concurrency}");
        if (http.Timeout <= 0) throw new IrrException($"{role}-timeout must be positive, not {http.Timeout} s");
        if (http.Retries < 0) throw new IrrException($"{role}-retries must not be negative, not {http.Retries}");
        Role = role;
        Http = http;
        _apiKey = http.ResolveApiKey(role);
        _timeout = TimeSpan.FromSeconds(http.Timeout);
        _retryDelay = TimeSpan.FromSeconds(http.RetryDelay);
        _gate = new SemaphoreSlim(http.Concurrency);
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

    /// <summary>The longest wait between attempts (a doubled <see cref="HttpSettings.RetryDelay"/> or a Retry-After is capped at it).</summary>
    public static readonly TimeSpan MaxRetryDelay = TimeSpan.FromSeconds(60);

    /// <summary>What the server is to the user ("judge", "engine"), for messages.</summary>
    public string Role { get; }

    /// <summary>The settings.</summary>
    public HttpSettings Http { get; }

    private readonly string? _apiKey;
    private readonly TimeSpan _timeout, _retryDelay;

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
    /// <returns>The body of a 2xx answer, or why there is none after 1 + <see cref="HttpSettings.Retries"/> attempts.</returns>
    /// <exception cref="IrrException">The server answered with a status other than 2xx, 429 or 5xx that is not about this one
    /// request (a configuration error), or it could not be reached by any request so far after all attempts.</exception>
    /// <exception cref="OperationCanceledException"><paramref name="cancellationToken"/> was cancelled, or a stop was requested (<see cref="Interruption"/>).</exception>
    public async Task<OpenAiReply> PostAsync(Uri endpoint, string json, CancellationToken cancellationToken = default)
    {
        // A stop request (Ctrl-C, SIGTERM) cuts every wait short: for a slot, for an answer, before a retry.
        using var stopping = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, Interruption.Token);
        cancellationToken = stopping.Token;
        await _gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            // After a configuration error (HTTP 401, 404 …) no other request is sent: every one would fail the same way.
            if (_configurationError is { } error) throw new IrrException(error.Message, error);
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
            timeout.CancelAfter(_timeout);
            try
            {
                using var message = new HttpRequestMessage(HttpMethod.Post, endpoint) { Content = new StringContent(json, Encoding.UTF8, "application/json") };
                if (_apiKey is not null) message.Headers.Authorization = new AuthenticationHeaderValue("Bearer", _apiKey);
                // Headers first, then the body read within the limit: a reply of any size never fills the memory.
                using var response = await _client.SendAsync(message, HttpCompletionOption.ResponseHeadersRead, timeout.Token).ConfigureAwait(false);
                _answered = true;
                int status = (int)response.StatusCode;
                string phrase = Diagnostics.Escape(response.ReasonPhrase ?? "");
                if (response.IsSuccessStatusCode)
                {
                    long limit = MaxReplyBytes;
                    var (body, whole) = await ReadBodyAsync(response.Content, limit, timeout.Token).ConfigureAwait(false);
                    // Not retried: the same request would get the same reply; it is this request's failure, recorded.
                    if (!whole) return new OpenAiReply(null, Limits.Exceeded($"{Role} endpoint {endpoint}", "the reply's size in bytes", MaxReplyBytesVariable, limit).Message, attempt + 1);
                    return new OpenAiReply(body, null, attempt + 1);
                }
                if (status != 429 && status < 500)
                {
                    // Of an error, only its message is quoted: the first MiB of the body is enough to find it.
                    string said = Snippet(ServerMessage((await ReadBodyAsync(response.Content, Math.Min(MaxReplyBytes, ErrorBodyBytes), timeout.Token).ConfigureAwait(false)).Text));
                    if (IsPerRequestError(status, said))
                        return new OpenAiReply(null, Redact($"HTTP {status} {phrase}: {said}"), attempt + 1) { Refused = true };
                    throw _configurationError = new IrrException(Redact($"{Role} endpoint {endpoint} answered HTTP {status} {phrase}: {said}{Hint(status, said)}"));
                }
                lastFailure = $"HTTP {status} {phrase}";
                retryAfter = RetryAfter(response);
            }
            catch (IOException e) when (!cancellationToken.IsCancellationRequested)
            {
                // The body broke off (the connection closed before the Content-Length or the last chunk): as a connection error.
                lastFailure = Redact($"the reply broke off: {Diagnostics.Escape(e.Message)}");
            }
            catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
            {
                lastFailure = $"no answer within {_timeout.TotalSeconds:0.###} s";
            }
            catch (HttpRequestException e)
            {
                // .NET's own message ("An error occurred while sending the request") hides the cause: add the inner one.
                lastFailure = Redact($"request failed: {e.Message}{(e.InnerException is { } inner ? $" ({inner.Message})" : "")}");
                if (attempt >= Http.Retries && !_answered)
                    throw _configurationError = new IrrException($"{Role} endpoint {endpoint} could not be reached ({Attempts(attempt + 1)}): {lastFailure}; is the server up at that URL?");
            }
            if (attempt >= Http.Retries)
                return new OpenAiReply(null, lastFailure, attempt + 1);
            var delay = retryAfter ?? _retryDelay * Math.Pow(2, attempt);
            await Task.Delay(delay > MaxRetryDelay ? MaxRetryDelay : delay, cancellationToken).ConfigureAwait(false);
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
        catch (Exception e) when (e is IrrException || (e is OperationCanceledException && !cancellationToken.IsCancellationRequested && !Interruption.Requested))
        {
            throw tasks.Where(t => t.IsFaulted).SelectMany(t => t.Exception!.InnerExceptions).OfType<IrrException>().First();
        }
    }

    // What length-refusals say: vLLM ("This model's maximum context length is 4096 tokens…", "The decoder prompt (length 5000)
    // is longer than the maximum model length of 4096", "'max_tokens' … is too large"), TGI ("`inputs` tokens + `max_new_tokens`
    // must be <= 4096"), llama.cpp ("the request exceeds the available context size"), OpenAI ("context_length_exceeded").
    private static readonly System.Text.RegularExpressions.Regex LengthWords = new(
        @"context|too long|too large|exceed|longer than|max_model_len|model length|input length|prompt length|too many tokens|must be <=",
        System.Text.RegularExpressions.RegexOptions.IgnoreCase | System.Text.RegularExpressions.RegexOptions.CultureInvariant);

    // A hosted API's refusal of one prompt's content: Azure OpenAI's HTTP 400 "The response was filtered due to the prompt
    // triggering Azure OpenAI's content management policy" (code content_filter), OpenAI's "Invalid prompt: your prompt was
    // flagged as potentially violating our usage policy" (code invalid_prompt) and "rejected as a result of our safety system"
    // (content_policy_violation). Harmful prompts are what a safety evaluation sends, so one of them is refused, not the run.
    private static readonly System.Text.RegularExpressions.Regex PolicyWords = new(
        @"content management policy|content[_ ]filter|content[_ ]policy|usage polic|safety system",
        System.Text.RegularExpressions.RegexOptions.IgnoreCase | System.Text.RegularExpressions.RegexOptions.CultureInvariant);

    /// <summary>
    /// Whether an HTTP error is about one request rather than the configuration: 413 (the request is too large), or 400
    /// or 422 whose message (<paramref name="message"/>) is about the request's length (vLLM answers 400 when the prompt
    /// and max_tokens exceed max_model_len; TGI 422), or a 400 refusing the prompt's content (Azure OpenAI's content
    /// filter, OpenAI's usage-policy refusal). Any other 4xx (a wrong model name — vLLM's 404 "The model `x` does
    /// not exist." —, 401, 403, a wrong endpoint path, a 400 about a parameter every request carries) is a configuration error.
    /// </summary>
    /// <param name="status">The HTTP status.</param>
    /// <param name="message">The server's error message (or body).</param>
    public static bool IsPerRequestError(int status, string message) =>
        status == 413 || (status is 400 or 422 && LengthWords.IsMatch(message)) || (status == 400 && PolicyWords.IsMatch(message));

    // A hint for the usual configuration errors.
    private string Hint(int status, string said) => status switch
    {
        401 or 403 => " (is the API key right? see api-key-env)",
        404 when said.Contains("model", StringComparison.OrdinalIgnoreCase) => $" (is {Role}-model the name the server serves?)",
        404 => $" (is {Role}-url the server's base, its /v1, or an endpoint?)",
        _ => "",
    };

    /// <summary>
    /// The message of an OpenAI-style error body, on one line: vLLM's <c>{"object": "error", "message": …}</c>, OpenAI's and
    /// llama.cpp's <c>{"error": {"message": …}}</c>, TGI's <c>{"error": "…"}</c>, FastAPI's <c>{"detail": "…"}</c>; otherwise the body
    /// itself. Line breaks and other control characters are escaped.
    /// </summary>
    public static string ServerMessage(string body)
    {
        string text = body;
        try
        {
            var root = System.Text.Json.Nodes.JsonNode.Parse(body);
            string? Str(System.Text.Json.Nodes.JsonNode? n) => n is System.Text.Json.Nodes.JsonValue v && v.TryGetValue(out string? s) ? s : null;
            if (root is System.Text.Json.Nodes.JsonObject o)
                text = Str(o["message"]) ?? (o["error"] is System.Text.Json.Nodes.JsonObject error ? Str(error["message"]) : Str(o["error"])) ?? Str(o["detail"]) ?? body;
        }
        catch (Exception e) when (e is System.Text.Json.JsonException or InvalidOperationException)
        {
        }
        return Diagnostics.Escape(text.Trim());
    }

    /// <summary>The variable that sets <see cref="MaxReplyBytes"/>.</summary>
    public const string MaxReplyBytesVariable = "IRR_MAX_REPLY_BYTES";

    /// <summary>The default of <see cref="MaxReplyBytes"/>: 64 MiB, hundreds of times a long completion's reply.</summary>
    public const long DefaultMaxReplyBytes = 64L << 20;

    // How much of an error reply is read for its message.
    private const long ErrorBodyBytes = 1L << 20;

    /// <summary>
    /// The largest reply body read from a server (a serving engine, a judge; <see cref="Limits"/>: <c>IRR_MAX_REPLY_BYTES</c>,
    /// default 64 MiB): a larger reply is that request's failure, read no further.
    /// </summary>
    /// <exception cref="IrrException">The variable is set but is not a positive size.</exception>
    public static long MaxReplyBytes => Math.Min(Limits.Get(MaxReplyBytesVariable, DefaultMaxReplyBytes), Array.MaxLength);

    /// <summary>
    /// Reads a reply body as UTF-8, streamed, at most <paramref name="limit"/> bytes (whatever Content-Length says, chunked or
    /// not): the text and true when the body was read whole; else the first <paramref name="limit"/> bytes' text (nothing
    /// when the declared Content-Length is already larger) and false.
    /// </summary>
    /// <exception cref="IOException">The body broke off.</exception>
    /// <exception cref="OperationCanceledException"><paramref name="cancellationToken"/> was cancelled.</exception>
    public static async Task<(string Text, bool Whole)> ReadBodyAsync(HttpContent content, long limit, CancellationToken cancellationToken)
    {
        if (content.Headers.ContentLength is { } declared && declared > limit) return ("", false);
        var stream = await content.ReadAsStreamAsync(cancellationToken).ConfigureAwait(false);
        await using var _ = stream.ConfigureAwait(false);
        using var body = new MemoryStream((int)Math.Min(content.Headers.ContentLength ?? 1 << 16, limit));
        var chunk = new byte[1 << 16];
        int read;
        while ((read = await stream.ReadAsync(chunk, cancellationToken).ConfigureAwait(false)) > 0)
        {
            if (body.Length + read > limit)
            {
                body.Write(chunk, 0, (int)(limit - body.Length));
                return (Encoding.UTF8.GetString(body.GetBuffer(), 0, (int)body.Length), false);
            }
            body.Write(chunk, 0, read);
        }
        return (Encoding.UTF8.GetString(body.GetBuffer(), 0, (int)body.Length), true);
    }

    /// <summary>
    /// The scalar values at <paramref name="paths"/> of a JSON reply (property names and array indices, dot-separated:
    /// <c>choices.0.text</c>), each with its token type (a string's text unescaped, a number's as written, null for
    /// true, false and null), read in one pass without building the document: what is not asked for is skipped, so a
    /// reply of millions of values costs no more memory than its text. A path to an object or array is not a value (absent).
    /// Of a key given twice, the last counts.
    /// </summary>
    /// <exception cref="System.Text.Json.JsonException">The reply is not JSON, or nests deeper than 64 levels.</exception>
    public static Dictionary<string, (System.Text.Json.JsonTokenType Type, string? Text)> Fields(string reply, params string[] paths)
    {
        var found = new Dictionary<string, (System.Text.Json.JsonTokenType, string?)>(StringComparer.Ordinal);
        var wanted = paths.ToHashSet(StringComparer.Ordinal);
        var prefixes = paths.SelectMany(p => p.Split('.').Select((_, i) => string.Join('.', p.Split('.').Take(i + 1)))).ToHashSet(StringComparer.Ordinal);
        var reader = new System.Text.Json.Utf8JsonReader(Encoding.UTF8.GetBytes(reply), new System.Text.Json.JsonReaderOptions { MaxDepth = 64 });
        // The containers entered (those on a wanted path): their path, whether an array, and an array's next index.
        var open = new Stack<(string Path, bool Array, int Next)>();
        string? property = null;
        while (reader.Read())
        {
            var type = reader.TokenType;
            if (type == System.Text.Json.JsonTokenType.PropertyName)
            {
                property = reader.GetString();
                continue;
            }
            if (type is System.Text.Json.JsonTokenType.EndObject or System.Text.Json.JsonTokenType.EndArray)
            {
                open.Pop();
                continue;
            }
            string path = "";
            if (open.Count > 0)
            {
                var (parent, array, next) = open.Pop();
                string segment = array ? next.ToString(System.Globalization.CultureInfo.InvariantCulture) : property!;
                open.Push((parent, array, array ? next + 1 : next));
                path = parent.Length == 0 ? segment : parent + "." + segment;
            }
            if (type is System.Text.Json.JsonTokenType.StartObject or System.Text.Json.JsonTokenType.StartArray)
            {
                if (open.Count == 0 || prefixes.Contains(path)) open.Push((path, type == System.Text.Json.JsonTokenType.StartArray, 0));
                else reader.Skip();
                continue;
            }
            if (wanted.Contains(path))
                found[path] = (type, type switch
                {
                    System.Text.Json.JsonTokenType.String => reader.GetString(),
                    System.Text.Json.JsonTokenType.Number => Encoding.UTF8.GetString(reader.ValueSpan),
                    _ => null,
                });
        }
        return found;
    }

    /// <summary>"1 attempt", "3 attempts".</summary>
    public static string Attempts(int count) => count == 1 ? "1 attempt" : $"{count} attempts";

    /// <summary>The first 300 characters of a server's text, for messages, escaped (<see cref="Diagnostics.Escape"/>) (a surrogate pair is not split).</summary>
    public static string Snippet(string text)
    {
        if (text.Length <= SnippetLength) return Diagnostics.Escape(text);
        int cut = char.IsHighSurrogate(text[SnippetLength - 1]) ? SnippetLength - 1 : SnippetLength;
        return Diagnostics.Escape(text[..cut]) + "…";
    }

    // How much of a server's text a message quotes.
    private const int SnippetLength = 300;

    /// <summary><paramref name="text"/> with the API key replaced by <c>***</c>: nothing the server sends back may carry the key into a message.</summary>
    public string Redact(string text) =>
        string.IsNullOrEmpty(_apiKey) ? text : text.Replace(_apiKey, "***", StringComparison.Ordinal);

    /// <summary>Releases the gate (and a test handler's client); the shared connection pool stays.</summary>
    public void Dispose()
    {
        _gate.Dispose();
        if (_ownsClient) _client.Dispose();
    }
}
