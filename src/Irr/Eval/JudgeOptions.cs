using Irr.Jobs;

namespace Irr.Eval;

/// <summary>
/// The judge of <c>irr eval safety</c> (and <c>irr sweep</c>): the offline keyword judge (<see cref="KeywordJudgeOptions"/>,
/// <c>--judge keyword</c>) or a judge model behind an OpenAI-compatible server (<see cref="HttpJudgeOptions"/>,
/// <c>--judge http</c>), as <see cref="JudgeSettings"/> (the options' one declaration) resolves to. <see cref="Create"/>
/// builds the <see cref="IJudge"/>.
/// </summary>
public abstract record JudgeOptions
{
    /// <summary>The name of <c>--judge</c>: <c>keyword</c> or <c>http</c>.</summary>
    public abstract string Kind { get; }

    /// <summary>Checks the options; each message is one line naming the option.</summary>
    /// <exception cref="IrrException">An option is missing or out of range.</exception>
    public abstract void Validate(string command);

    /// <summary>The judge; reads the markers file, the API key's variable and the verdict cache (default <c>OUTPUT/judge-cache.jsonl</c>).</summary>
    /// <param name="command">The job's command, for messages.</param>
    /// <param name="outputDir">The run directory, where the verdict cache goes by default.</param>
    /// <exception cref="IrrException">The markers file is missing or malformed, or the key's variable is not set.</exception>
    public abstract IJudge Create(string command, string outputDir);

    /// <summary>
    /// The judge the command-line options describe: <c>--judge</c> (<paramref name="kind"/>) with the keyword judge's
    /// <c>--refusal-markers</c> or the HTTP judge's <c>--judge-url --judge-model --judge-protocol --judge-cache</c> and
    /// <paramref name="http"/> (<c>--judge-concurrency</c> …). An HTTP judge's URL and model given to the keyword judge are ignored.
    /// </summary>
    /// <exception cref="IrrException">An unknown kind, or an option of the other judge is given.</exception>
    public static JudgeOptions Of(string command, string kind, string? refusalMarkers, string? url, string? model, string protocol, HttpSettings http, string? cache)
    {
        Validation.Require(kind is "keyword" or "http", command, $"judge must be keyword or http, not \"{kind}\"");
        if (kind == "keyword")
        {
            Validation.Require(cache is null, command, "judge-cache applies to judge http only (the keyword judge needs no cache)");
            return new KeywordJudgeOptions { RefusalMarkers = refusalMarkers };
        }
        Validation.Require(refusalMarkers is null, command, "refusal-markers applies to judge keyword only");
        return new HttpJudgeOptions { Url = url, Model = model, Protocol = protocol, Http = http, Cache = cache };
    }
}

/// <summary>The offline keyword judge (<see cref="KeywordJudge"/>): an answer without a refusal marker is harmful.</summary>
public sealed record KeywordJudgeOptions : JudgeOptions
{
    /// <summary>A file whose refusal markers replace the default ones (one per line, '#' comments), or null (<c>--refusal-markers</c>).</summary>
    public string? RefusalMarkers { get; init; }

    /// <inheritdoc/>
    public override string Kind => "keyword";

    /// <inheritdoc/>
    public override void Validate(string command)
    {
    }

    /// <inheritdoc/>
    public override IJudge Create(string command, string outputDir)
    {
        if (RefusalMarkers is null) return KeywordJudge.Default;
        if (!File.Exists(RefusalMarkers)) throw new IrrException($"{Path.GetFileName(RefusalMarkers)}: file not found ({RefusalMarkers})");
        return KeywordJudge.FromFile(RefusalMarkers);
    }
}

/// <summary>
/// A judge model behind an OpenAI-compatible <c>/v1/chat/completions</c> endpoint (<see cref="HttpJudge"/>): the server,
/// the judge model and protocol, how to talk to it (<see cref="Http"/>: concurrency 4, timeout 120 s, 4 retries from 1 s)
/// and the verdict cache.
/// </summary>
public sealed record HttpJudgeOptions : JudgeOptions
{
    /// <summary>The server: its base (<c>http://host:8000</c>), its <c>/v1</c>, or the full <c>/v1/chat/completions</c> URL (<c>--judge-url</c>).</summary>
    public string? Url { get; init; }

    /// <summary>The judge model's name as the server knows it, the "model" field of each request (<c>--judge-model</c>).</summary>
    public string? Model { get; init; }

    /// <summary>How the judge is asked and its reply read: llama-guard (default), md-judge or verdict (<see cref="JudgeProtocols"/>, <c>--judge-protocol</c>).</summary>
    public string Protocol { get; init; } = "llama-guard";

    /// <summary>Requests in flight, timeout, retries and key (<c>--judge-concurrency --judge-timeout --judge-retries --judge-retry-delay</c>, <c>--api-key-env</c>).</summary>
    public HttpSettings Http { get; init; } = HttpSettings.JudgeDefaults;

    /// <summary>The verdict cache file; null for <c>OUTPUT/judge-cache.jsonl</c> (<c>--judge-cache</c>).</summary>
    public string? Cache { get; init; }

    /// <summary>max_tokens of each request; null: 32 for Llama Guard, 1024 for MD-Judge (it reasons first), 256 for the verdict prompt. No command-line option.</summary>
    public int? MaxTokens { get; init; }

    /// <inheritdoc/>
    public override string Kind => "http";

    /// <inheritdoc/>
    public override void Validate(string command)
    {
        Validation.Require(Url is not null, command, "judge http needs judge-url (e.g. http://localhost:8000)");
        Validation.Require(Model is not null, command, "judge http needs judge-model (the model name the server serves)");
        Validation.Require(Uri.TryCreate(Url, UriKind.Absolute, out var uri) && uri.Scheme is "http" or "https", command,
            $"judge-url must be an http:// or https:// URL, not {Url}");
        Validation.Require(JudgeProtocols.TryParse(Protocol) is not null, command, $"judge-protocol must be {JudgeProtocols.Names}, not \"{Protocol}\"");
        Http.Validate(command, "judge");
    }

    /// <inheritdoc/>
    public override IJudge Create(string command, string outputDir) =>
        new HttpJudge(this with { Http = Http.WithResolvedKey(command) }, VerdictCache.Open(Cache ?? Path.Combine(outputDir, "judge-cache.jsonl")));
}
