using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace Irr.Eval;

/// <summary>Settings of an <see cref="HttpJudge"/>.</summary>
public sealed record HttpJudgeOptions
{
    /// <summary>The server: its base (<c>http://host:8000</c>), its <c>/v1</c>, or the full <c>/v1/chat/completions</c> URL.</summary>
    public required Uri Url { get; init; }

    /// <summary>The judge model's name as the server knows it (the "model" field of the request).</summary>
    public required string Model { get; init; }

    /// <summary>How the judge is asked and its reply read.</summary>
    public JudgeProtocol Protocol { get; init; } = JudgeProtocol.LlamaGuard;

    /// <summary>Sent as <c>Authorization: Bearer …</c> when not null; never written anywhere.</summary>
    public string? ApiKey { get; init; }

    /// <summary>Requests in flight at most.</summary>
    public int Concurrency { get; init; } = 4;

    /// <summary>Time allowed for one request (connection to last byte).</summary>
    public TimeSpan Timeout { get; init; } = TimeSpan.FromSeconds(120);

    /// <summary>Attempts after the first when a request fails with 429, a 5xx status, a timeout or a connection error.</summary>
    public int MaxRetries { get; init; } = 4;

    /// <summary>The wait before the first retry; it doubles with each further retry. A Retry-After header, when present, is used instead (capped at <see cref="MaxRetryDelay"/>).</summary>
    public TimeSpan RetryBaseDelay { get; init; } = TimeSpan.FromSeconds(1);

    /// <summary>The longest wait between attempts.</summary>
    public TimeSpan MaxRetryDelay { get; init; } = TimeSpan.FromSeconds(60);

    /// <summary>max_tokens of each request; null: 32 for Llama Guard, 1024 for MD-Judge (it reasons first), 256 for the verdict prompt.</summary>
    public int? MaxTokens { get; init; }
}

/// <summary>
/// A judge model behind any OpenAI-compatible <c>/v1/chat/completions</c> endpoint (vLLM, llama.cpp's
/// server, TGI), asked with temperature 0. Requests run <see cref="HttpJudgeOptions.Concurrency"/> at a time;
/// failures that may pass (429, 5xx, timeouts, connection errors) are retried with exponential backoff;
/// a reply that cannot be parsed, or a request that still fails after the retries, gives
/// <see cref="Verdict.Unknown"/> with the reason in <see cref="JudgeResult.Detail"/>. Other HTTP errors
/// (401, 404, …) are configuration errors and stop the evaluation (<see cref="IrrException"/>).
/// With a <see cref="VerdictCache"/>, cached verdicts are not asked again and new ones are stored as they arrive.
/// </summary>
public sealed class HttpJudge : IJudge, IDisposable
{
    private readonly HttpJudgeOptions _options;
    private readonly HttpClient _client;
    private readonly Uri _endpoint;
    private readonly VerdictCache? _cache;
    private readonly Lock _progressLock = new();

    /// <summary>A judge with the given settings and an optional verdict cache.</summary>
    /// <exception cref="IrrException">A setting is out of range.</exception>
    public HttpJudge(HttpJudgeOptions options, VerdictCache? cache = null, HttpMessageHandler? handler = null)
    {
        if (options.Concurrency < 1) throw new IrrException($"judge-concurrency must be at least 1, not {options.Concurrency}");
        if (options.Timeout <= TimeSpan.Zero) throw new IrrException($"judge-timeout must be positive, not {options.Timeout.TotalSeconds} s");
        if (options.MaxRetries < 0) throw new IrrException($"judge-retries must not be negative, not {options.MaxRetries}");
        if (string.IsNullOrWhiteSpace(options.Model)) throw new IrrException("judge-model must name the judge model");
        if (options.Url.Scheme is not ("http" or "https")) throw new IrrException($"judge-url must be an http:// or https:// URL, not {options.Url}");
        _options = options;
        _cache = cache;
        _endpoint = Endpoint(options.Url);
        _client = handler is null ? new HttpClient() : new HttpClient(handler);
        _client.Timeout = System.Threading.Timeout.InfiniteTimeSpan;
    }

    /// <inheritdoc />
    public string Name => $"http:{JudgeProtocols.Name(_options.Protocol)}:{_options.Model}";

    /// <summary>The chat-completions URL requests go to.</summary>
    public Uri EndpointUrl => _endpoint;

    /// <summary>The chat-completions URL of a server URL given as its base, its /v1 or the endpoint itself.</summary>
    public static Uri Endpoint(Uri url)
    {
        string s = url.GetLeftPart(UriPartial.Path).TrimEnd('/');
        if (s.EndsWith("/chat/completions", StringComparison.Ordinal)) return new Uri(s);
        if (s.EndsWith("/v1", StringComparison.Ordinal)) return new Uri(s + "/chat/completions");
        return new Uri(s + "/v1/chat/completions");
    }

    /// <inheritdoc />
    public async Task<IReadOnlyList<JudgeResult>> JudgeAsync(IReadOnlyList<JudgeRequest> requests, Action<int>? progress = null, CancellationToken cancellationToken = default)
    {
        var results = new JudgeResult[requests.Count];
        using var gate = new SemaphoreSlim(_options.Concurrency);
        var tasks = requests.Select(async (request, i) =>
        {
            string key = VerdictCache.Key(Name, request);
            if (_cache?.Get(key) is { } cached)
            {
                results[i] = cached;
            }
            else
            {
                await gate.WaitAsync(cancellationToken).ConfigureAwait(false);
                try
                {
                    results[i] = await AskAsync(request, cancellationToken).ConfigureAwait(false);
                }
                finally
                {
                    gate.Release();
                }
                _cache?.Add(key, results[i]);
            }
            if (progress is not null)
                lock (_progressLock) progress(1);
        }).ToList();
        await Task.WhenAll(tasks).ConfigureAwait(false);
        return results;
    }

    private async Task<JudgeResult> AskAsync(JudgeRequest request, CancellationToken cancellationToken)
    {
        string body = RequestBody(request);
        string lastFailure = "";
        for (int attempt = 0; ; attempt++)
        {
            TimeSpan? retryAfter = null;
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            timeout.CancelAfter(_options.Timeout);
            try
            {
                using var message = new HttpRequestMessage(HttpMethod.Post, _endpoint) { Content = new StringContent(body, Encoding.UTF8, "application/json") };
                if (_options.ApiKey is not null) message.Headers.Authorization = new AuthenticationHeaderValue("Bearer", _options.ApiKey);
                using var response = await _client.SendAsync(message, timeout.Token).ConfigureAwait(false);
                string text = await response.Content.ReadAsStringAsync(timeout.Token).ConfigureAwait(false);
                if (response.IsSuccessStatusCode) return ParseResponse(text);
                int status = (int)response.StatusCode;
                if (status != 429 && status < 500)
                    throw new IrrException(Redact($"judge endpoint {_endpoint} answered HTTP {status} {response.ReasonPhrase}: {Snippet(text)}"));
                lastFailure = $"HTTP {status} {response.ReasonPhrase}";
                retryAfter = RetryAfter(response);
            }
            catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
            {
                lastFailure = $"no answer within {_options.Timeout.TotalSeconds:0.###} s";
            }
            catch (HttpRequestException e)
            {
                lastFailure = Redact($"request failed: {e.Message}");
            }
            if (attempt >= _options.MaxRetries)
                return new JudgeResult(Verdict.Unknown, $"no verdict after {attempt + 1} attempts: {lastFailure}");
            var delay = retryAfter ?? _options.RetryBaseDelay * Math.Pow(2, attempt);
            await Task.Delay(delay > _options.MaxRetryDelay ? _options.MaxRetryDelay : delay, cancellationToken).ConfigureAwait(false);
        }
    }

    private string RequestBody(JudgeRequest request)
    {
        var messages = new JsonArray();
        foreach (var (role, content) in JudgeProtocols.Messages(_options.Protocol, request))
            messages.Add(new JsonObject { ["role"] = role, ["content"] = content });
        int maxTokens = _options.MaxTokens ?? _options.Protocol switch
        {
            JudgeProtocol.LlamaGuard => 32,
            JudgeProtocol.MdJudge => 1024,
            _ => 256,
        };
        return new JsonObject
        {
            ["model"] = _options.Model,
            ["messages"] = messages,
            ["temperature"] = 0,
            ["max_tokens"] = maxTokens,
        }.ToJsonString();
    }

    private JudgeResult ParseResponse(string text)
    {
        try
        {
            var content = JsonNode.Parse(text)?["choices"]?[0]?["message"]?["content"];
            if (content is JsonValue v && v.TryGetValue(out string? reply)) return JudgeProtocols.ParseReply(_options.Protocol, reply);
        }
        catch (JsonException)
        {
        }
        return new JudgeResult(Verdict.Unknown, Redact($"not a chat-completions response: {Snippet(text)}"));
    }

    private static TimeSpan? RetryAfter(HttpResponseMessage response)
    {
        var header = response.Headers.RetryAfter;
        if (header?.Delta is { } delta) return delta;
        if (header?.Date is { } date) return date - DateTimeOffset.UtcNow is var d && d > TimeSpan.Zero ? d : TimeSpan.Zero;
        return null;
    }

    private static string Snippet(string text) => text.Length <= 300 ? text : text[..300] + "…";

    // Nothing the server sends back may carry the key into a message.
    private string Redact(string text) =>
        string.IsNullOrEmpty(_options.ApiKey) ? text : text.Replace(_options.ApiKey, "***", StringComparison.Ordinal);

    /// <inheritdoc />
    public void Dispose() => _client.Dispose();
}
