using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace Irr.Eval;

/// <summary>
/// A judge model behind any OpenAI-compatible <c>/v1/chat/completions</c> endpoint (vLLM, llama.cpp's
/// server, TGI), asked with temperature 0 through an <see cref="OpenAiClient"/>. Requests run <see cref="HttpSettings.Concurrency"/> at a time;
/// failures that may pass (429, 5xx, timeouts, connection errors) are retried with exponential backoff;
/// a reply that cannot be parsed, a request that still fails after the retries, or one the server refuses by itself
/// (<see cref="OpenAiClient.IsPerRequestError"/>: a response too long for the judge's context) gives
/// <see cref="Verdict.Unknown"/> with the reason in <see cref="JudgeResult.Detail"/> (not cached: asked again on a rerun).
/// Other HTTP errors (401, 404, …) are configuration errors and stop the evaluation (<see cref="IrrException"/>).
/// With a <see cref="VerdictCache"/>, cached verdicts are not asked again and new ones are stored as they arrive.
/// </summary>
public sealed class HttpJudge : IJudge, IDisposable
{
    private readonly HttpJudgeOptions _options;
    private readonly JudgeProtocol _protocol;
    private readonly OpenAiClient _client;
    private readonly Uri _endpoint;
    private readonly VerdictCache? _cache;
    private readonly Lock _progressLock = new();

    /// <summary>
    /// A judge with the given settings (its key: <see cref="HttpSettings.ApiKey"/>, else <see cref="HttpSettings.ApiKeyEnv"/>'s
    /// variable; the settings' <see cref="HttpJudgeOptions.Cache"/> is the job's to open).
    /// </summary>
    /// <exception cref="IrrException">A setting is missing or out of range.</exception>
    public HttpJudge(HttpJudgeOptions options) : this(options, null) { }

    /// <summary>A judge with the given settings and an optional verdict cache; <paramref name="handler"/> replaces the shared connection pool (tests).</summary>
    /// <exception cref="IrrException">A setting is missing or out of range.</exception>
    internal HttpJudge(HttpJudgeOptions options, VerdictCache? cache, HttpMessageHandler? handler = null)
    {
        if (string.IsNullOrWhiteSpace(options.Model)) throw new IrrException("judge-model must name the judge model");
        if (!Uri.TryCreate(options.Url, UriKind.Absolute, out var url) || url.Scheme is not ("http" or "https"))
            throw new IrrException($"judge-url must be an http:// or https:// URL, not {options.Url}");
        _protocol = JudgeProtocols.Parse(options.Protocol);
        _client = new OpenAiClient("judge", options.Http, handler);
        _options = options;
        _cache = cache;
        _endpoint = Endpoint(url);
    }

    /// <inheritdoc />
    public string Name => $"http:{JudgeProtocols.Name(_protocol)}:{_options.Model}";

    /// <summary>True for the WildGuard protocol, the one whose reply has a refusal verdict.</summary>
    public bool JudgesRefusal => _protocol == JudgeProtocol.WildGuard;

    /// <summary>The chat-completions URL requests go to.</summary>
    public Uri EndpointUrl => _endpoint;

    /// <summary>The chat-completions URL of a server URL given as its base, its /v1 or the endpoint itself.</summary>
    public static Uri Endpoint(Uri url) => OpenAiClient.Endpoint(url, "chat/completions");

    /// <inheritdoc />
    public async Task<IReadOnlyList<JudgeResult>> JudgeAsync(IReadOnlyList<JudgeRequest> requests, Action<int>? progress = null, CancellationToken cancellationToken = default)
    {
        var results = new JudgeResult[requests.Count];
        // A stop request keeps the verdicts received so far (each was appended to the cache as it came), and says so.
        using var keeping = Interruption.Token.Register(() =>
        {
            if (_cache is { Count: > 0 } c) Interruption.Keep($"kept {c.Count} cached verdicts in {c.Path}; run the same command to resume");
        });
        // A configuration error (401, 404 …) stops the requests not yet sent, as the serving engine's do.
        await OpenAiClient.ForEachAsync(requests.Count, async (i, cancellationToken) =>
        {
            var request = requests[i];
            string key = VerdictCache.Key(Name, request);
            if (_cache?.Get(key) is { } cached)
            {
                results[i] = cached;
            }
            else
            {
                var reply = await _client.PostAsync(_endpoint, RequestBody(request), cancellationToken).ConfigureAwait(false);
                results[i] = reply.Body is { } body ? ParseResponse(body)
                    : new JudgeResult(Verdict.Unknown, reply.Refused ? reply.Reason : $"no verdict after {OpenAiClient.Attempts(reply.Attempts)}: {reply.Failure}");
                _cache?.Add(key, results[i]);
            }
            if (progress is not null)
                lock (_progressLock) progress(1);
        }, cancellationToken).ConfigureAwait(false);
        return results;
    }

    private string RequestBody(JudgeRequest request)
    {
        var messages = new JsonArray();
        foreach (var (role, content) in JudgeProtocols.Messages(_protocol, request))
            messages.Add(new JsonObject { ["role"] = role, ["content"] = content });
        int maxTokens = _options.MaxTokens ?? _protocol switch
        {
            JudgeProtocol.LlamaGuard => 32,
            JudgeProtocol.MdJudge => 1024,
            JudgeProtocol.WildGuard => 128,
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
            // The reply's content, and nothing else of the reply (which may hold anything, up to the reply limit).
            if (OpenAiClient.Fields(text, "choices.0.message.content").GetValueOrDefault("choices.0.message.content") is (JsonTokenType.String, { } reply))
                return JudgeProtocols.ParseReply(_protocol, reply);
        }
        catch (JsonException) // not JSON
        {
        }
        return new JudgeResult(Verdict.Unknown, _client.Redact($"not a chat-completions response: {OpenAiClient.Snippet(text)}"));
    }

    /// <inheritdoc />
    public void Dispose() => _client.Dispose();
}
