using Irr.Model;
using Irr.Text;

namespace Irr.Eval;

/// <summary>
/// A serving engine open for one model, from start to end: <see cref="Open"/> connects to a running server
/// (<see cref="RunningEngine"/>) or starts one (<see cref="ServedEngine"/>: <see cref="EngineServer.Start(ServedEngine, string, string?, string, string)"/>,
/// waiting until it serves), <see cref="Generate"/> asks it (<see cref="ServingEngine"/>), keeping every answer in the
/// <see cref="EngineCache"/>, and <see cref="Dispose"/> closes it, stopping a server it started (a signal that ends irr
/// at once kills it too: <see cref="Interruption.LastResort"/>). <c>irr generate</c>, <c>irr eval safety</c> and
/// <c>irr eval task</c> each open one. A caller that evaluates several models in turn (the sweep) starts one session per
/// model with <see cref="Start"/> and passes <see cref="Running"/> to the jobs that generate with it, which then connect.
/// </summary>
public sealed class EngineSession : IDisposable
{
    // The server started for this session (a served engine), stopped with it; null for a running one.
    private readonly EngineServer? _server;
    private ServingEngine? _engine;

    private EngineSession(RunningEngine running, EngineServer? server)
    {
        Running = running;
        _server = server;
    }

    /// <summary>
    /// The running server this session talks to: the given one, or the one it started (its URL and unique served name,
    /// answers cached under the stable name: <see cref="EngineServer.Serving"/>).
    /// </summary>
    public RunningEngine Running { get; }

    /// <summary>The server this session started, or null.</summary>
    public EngineServer? Server => _server;

    /// <summary>The generating client, with the model's tokenizer and the answer cache (<see cref="Open"/>'s sessions only).</summary>
    /// <exception cref="InvalidOperationException">The session was only started (<see cref="Start"/>).</exception>
    public ServingEngine Engine => _engine ?? throw new InvalidOperationException("the engine session was started without a model's tokenizer: use Open to generate");

    /// <summary>
    /// The server of <paramref name="engine"/> for one model: a running one as it is, or a served one started for
    /// <paramref name="model"/> (and <paramref name="adapter"/>) under <paramref name="name"/> (null: its
    /// <see cref="EngineOptions.ServedName"/>), its output going to <paramref name="serveLog"/>. Generates nothing itself.
    /// </summary>
    /// <exception cref="IrrException">No serve command fits, or the server fails to serve.</exception>
    public static EngineSession Start(EngineOptions engine, string model, string? adapter, string? serveLog, string? name = null)
    {
        if (engine is RunningEngine running) return new EngineSession(running, null);
        var served = (ServedEngine)engine;
        var server = EngineServer.Start(served, model, adapter, name ?? served.ServedName,
            serveLog ?? throw new ArgumentNullException(nameof(serveLog), "engine-serve needs a log file"));
        return new EngineSession(server.Serving(served), server);
    }

    /// <summary>
    /// A session generating for the model directory <paramref name="modelDir"/>, of which only the tokenizer files,
    /// config.json and generation_config.json are read (the weights need not be there), with the cache
    /// <see cref="EngineOptions.Cache"/> or else <paramref name="defaultCache"/> (null: no cache). A caller that has loaded
    /// the directory's tokenizer already passes it as <paramref name="tokenizer"/>. Everything is read and checked before
    /// a server is started (<see cref="Start"/>, with <paramref name="serveLog"/>).
    /// </summary>
    /// <exception cref="IrrException">The tokenizer or a config is missing or malformed, the API key's variable is not set (the message names <paramref name="command"/>), or the server command fails to serve.</exception>
    public static EngineSession Open(EngineOptions options, string modelDir, string? defaultCache, string command, string? adapter = null, string? serveLog = null,
        PretrainedTokenizer? tokenizer = null)
    {
        options.Http.ResolveApiKey(command); // the job's name in the message
        tokenizer ??= PretrainedTokenizer.Load(modelDir, adapter);
        var eosIds = ChatModel.EosIds(modelDir, tokenizer);
        var cache = (options.Cache ?? defaultCache) is { } path ? EngineCache.Open(path) : null;
        string stamp = cache is null ? "" : $"{Jobs.ContentHash.OfModel(modelDir)}+{Jobs.ContentHash.OfModel(adapter)}";
        var session = Start(options, modelDir, adapter, serveLog);
        try
        {
            session._engine = new ServingEngine(session.Running, tokenizer, eosIds, cache) { ModelStamp = stamp };
            return session;
        }
        catch
        {
            session.Dispose();
            throw;
        }
    }

    /// <summary>The answers to <paramref name="requests"/>, in order (<see cref="ServingEngine.Generate"/>).</summary>
    /// <exception cref="IrrException">A configuration error (HTTP 401, 404 …), or the template refuses a conversation.</exception>
    /// <exception cref="OperationCanceledException">A stop was requested.</exception>
    public IReadOnlyList<ChatResponse> Generate(IReadOnlyList<ChatRequest> requests, int maxNewTokens, Action<Jobs.JobProgress>? progress = null) =>
        Engine.Generate(requests, maxNewTokens, progress);

    /// <summary>The answers to <paramref name="requests"/>, in order (<see cref="ServingEngine.RespondAsync"/>).</summary>
    /// <exception cref="IrrException">A configuration error (HTTP 401, 404 …), or the template refuses a conversation.</exception>
    public Task<IReadOnlyList<ChatResponse>> RespondAsync(IReadOnlyList<ChatRequest> requests, int maxNewTokens, Action<int>? progress = null,
        CancellationToken cancellationToken = default) =>
        Engine.RespondAsync(requests, maxNewTokens, progress, cancellationToken);

    /// <summary>Closes the generating client and stops a server the session started.</summary>
    public void Dispose()
    {
        _engine?.Dispose();
        _server?.Dispose();
    }
}
