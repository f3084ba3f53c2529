using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Runtime.InteropServices;
using System.Text;

namespace Irr.Eval;

/// <summary>
/// A serving engine that irr starts for one model and stops when done (<c>--engine-serve</c>): the user's command
/// line, e.g. <c>vllm serve {model} --served-model-name {name} --port {port}</c>, run by <c>/bin/sh -c</c> with the
/// placeholders replaced by shell-quoted values; irr waits until <c>GET /v1/models</c> answers 200, and on
/// <see cref="Dispose"/> kills the command's whole process tree (as it does when irr itself is ended by SIGTERM or
/// SIGINT, so that no server outlives irr). Its output goes to a log file, whose last lines an
/// error quotes. The command comes only from the command line: irr never runs a command read from a file.
/// </summary>
public sealed class EngineServer : IDisposable
{
    /// <summary>The started command's log file name in a run directory.</summary>
    public const string LogFileName = "engine-serve.log";

    /// <summary>The placeholders a serve command may use.</summary>
    public static readonly IReadOnlyList<string> Placeholders = ["{model}", "{adapter}", "{name}", "{port}"];

    private readonly Process _process;
    private readonly StreamWriter _log;
    private readonly Task _copyOut, _copyErr;

    // The last lines the command wrote to standard error (where vLLM and Python put their errors), for an error message: the
    // two streams are copied to the log by two tasks, so the log's order between them is not the order they were written in.
    private readonly Queue<string> _lastErrors;
    private readonly Lock _gate;
    private const int TailLines = 5;
    private bool _disposed;

    // Servers this process started, for the unique served names.
    private static int started;

    private EngineServer(Process process, StreamWriter log, Task copyOut, Task copyErr, Uri url, string servedModel, string logPath,
        Queue<string> lastErrors, Lock gate)
    {
        _lastErrors = lastErrors;
        _gate = gate;
        _process = process;
        _log = log;
        _copyOut = copyOut;
        _copyErr = copyErr;
        Url = url;
        ServedModel = servedModel;
        LogPath = logPath;
    }

    /// <summary>The server's base URL (<c>http://127.0.0.1:PORT</c>).</summary>
    public Uri Url { get; }

    /// <summary>The served model's name ({name}): what requests give as <c>model</c>, unique on the machine.</summary>
    public string ServedModel { get; }

    /// <summary>The model's name the server was started for (its label), which answers are cached under (<see cref="RunningEngine.CacheName"/>).</summary>
    public string Name { get; private init; } = "";

    /// <summary>The file the command's standard output and error go to.</summary>
    public string LogPath { get; }

    /// <summary>The running engine that talks to this server: <paramref name="options"/>' API, HTTP settings and cache, with its URL and served name.</summary>
    public RunningEngine Serving(ServedEngine options) =>
        new() { Url = Url.ToString(), Model = ServedModel, CacheName = Name, Api = options.Api, Http = options.Http, Cache = options.Cache };

    /// <summary>
    /// Checks a serve command: it must name the port ({port}) and the model ({model}), and, for a model with an adapter,
    /// the adapter ({adapter}: e.g. vLLM's <c>--enable-lora --lora-modules {name}={adapter}</c>).
    /// </summary>
    /// <exception cref="IrrException">A placeholder is missing, or an unknown one is used.</exception>
    public static void Check(string command, bool hasAdapter, string option = "engine-serve")
    {
        if (string.IsNullOrWhiteSpace(command)) throw new IrrException($"{option} must be a command line");
        foreach (System.Text.RegularExpressions.Match m in System.Text.RegularExpressions.Regex.Matches(command, @"\{[a-z_]+\}"))
            if (!Placeholders.Contains(m.Value))
                throw new IrrException($"{option}: unknown placeholder {m.Value} (use {string.Join(", ", Placeholders)})");
        if (!command.Contains("{port}", StringComparison.Ordinal))
            throw new IrrException($"{option} must contain {{port}}: irr chooses a free port for each server it starts (the command given: {command})");
        if (!command.Contains("{model}", StringComparison.Ordinal))
            throw new IrrException($"{option} must contain {{model}}: the model directory to serve (the command given: {command})");
        if (hasAdapter && !command.Contains("{adapter}", StringComparison.Ordinal))
            throw new IrrException($"{option} must contain {{adapter}} to evaluate an adapter (e.g. vllm serve {{model}} --enable-lora --lora-modules {{name}}={{adapter}} --port {{port}})");
    }

    /// <summary>The command line with its placeholders replaced by shell-quoted values.</summary>
    public static string Expand(string command, string model, string? adapter, string name, int port) => command
        .Replace("{model}", Quote(Path.GetFullPath(model)), StringComparison.Ordinal)
        .Replace("{adapter}", adapter is null ? "" : Quote(Path.GetFullPath(adapter)), StringComparison.Ordinal)
        .Replace("{name}", Quote(name), StringComparison.Ordinal)
        .Replace("{port}", port.ToString(System.Globalization.CultureInfo.InvariantCulture), StringComparison.Ordinal);

    /// <summary>A POSIX shell single-quoted word.</summary>
    public static string Quote(string text) => "'" + text.Replace("'", "'\\''", StringComparison.Ordinal) + "'";

    /// <summary>
    /// Starts the server <paramref name="options"/> describe (<see cref="ServedEngine.ServeCommand"/>, with or without an
    /// adapter; <see cref="ServedEngine.ServeTimeout"/>) for a model, through the shared connection pool.
    /// </summary>
    /// <exception cref="IrrException">No serve command fits, or the server fails to serve (see the other overload).</exception>
    public static EngineServer Start(ServedEngine options, string model, string? adapter, string name, string logPath) =>
        Start(options.ServeCommand(adapter is not null), model, adapter, name, logPath, TimeSpan.FromSeconds(options.ServeTimeout), OpenAiClient.SharedHttp);

    /// <summary>
    /// Starts the command for a model and waits until it serves: <c>GET /v1/models</c> answers 200 within
    /// <paramref name="startupTimeout"/>, polled every <paramref name="pollInterval"/> (default 1 s).
    /// </summary>
    /// <param name="command">The serve command with its placeholders (<see cref="Check"/>).</param>
    /// <param name="model">The model directory ({model}).</param>
    /// <param name="adapter">The adapter directory ({adapter}), or null.</param>
    /// <param name="name">
    /// The model's name; {name} is it with irr's process id and a count (<c>irr-s0.5-4711-1</c>), unique on the machine, so
    /// that the readiness check can tell this server from another one that took the port first (<see cref="ServedModel"/>).
    /// </param>
    /// <param name="logPath">Where the command's output goes (its directory is created).</param>
    /// <param name="startupTimeout">How long the server may take to come up (vLLM loads a 7B model in 1–3 min).</param>
    /// <param name="client">The HTTP client the readiness checks use.</param>
    /// <param name="pollInterval">The wait between readiness checks.</param>
    /// <param name="cancellationToken">Stops waiting (the server is then stopped).</param>
    /// <exception cref="IrrException">The command cannot be started, exits before it serves, or does not serve in time; the message quotes the last lines of its standard error (else of the log).</exception>
    public static EngineServer Start(string command, string model, string? adapter, string name, string logPath, TimeSpan startupTimeout,
        HttpClient client, TimeSpan? pollInterval = null, CancellationToken cancellationToken = default)
    {
        Check(command, adapter is not null);
        int port = FreePort();
        string served = $"{name}-{Environment.ProcessId}-{Interlocked.Increment(ref started)}";
        string line = Expand(command, model, adapter, served, port);
        Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(logPath))!);
        var log = new StreamWriter(logPath, append: false, new UTF8Encoding(false)) { AutoFlush = true };
        log.WriteLine($"# irr engine-serve: {line}");
        var info = new ProcessStartInfo("/bin/sh") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        info.ArgumentList.Add("-c");
        info.ArgumentList.Add(line);
        Process process;
        try
        {
            process = Process.Start(info) ?? throw new IrrException($"engine-serve: could not start /bin/sh -c {line}");
        }
        catch (Exception e) when (e is System.ComponentModel.Win32Exception or InvalidOperationException)
        {
            log.Dispose();
            throw new IrrException($"engine-serve: could not start /bin/sh -c {line}: {e.Message}", e);
        }
        var gate = new Lock();
        var lastErrors = new Queue<string>();
        Task Copy(StreamReader from, Queue<string>? last = null) => Task.Run(async () =>
        {
            try
            {
                await foreach (string text in Lines(from).ConfigureAwait(false))
                    lock (gate)
                    {
                        log.WriteLine(text);
                        if (last is null || text.Length == 0) continue;
                        last.Enqueue(text);
                        if (last.Count > TailLines) last.Dequeue();
                    }
            }
            catch (ObjectDisposedException)
            {
                // The log was closed by Dispose while a process that escaped the kill still wrote: its output is dropped.
            }
        });
        var server = new EngineServer(process, log, Copy(process.StandardOutput), Copy(process.StandardError, lastErrors),
            new Uri($"http://127.0.0.1:{port}"), served, Path.GetFullPath(logPath), lastErrors, gate) { Name = name };
        Track(server, live: true);
        try
        {
            server.WaitReady(client, startupTimeout, pollInterval ?? TimeSpan.FromSeconds(1), cancellationToken);
            return server;
        }
        catch
        {
            server.Dispose();
            throw;
        }
    }

    private void WaitReady(HttpClient client, TimeSpan timeout, TimeSpan poll, CancellationToken cancellationToken)
    {
        // A stop request (Ctrl-C, SIGTERM) ends the wait for a server that is loading (the caller then stops it).
        using var stopping = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, Interruption.Token);
        cancellationToken = stopping.Token;
        var models = new Uri(Url, "/v1/models");
        var clock = Stopwatch.StartNew();
        while (true)
        {
            cancellationToken.ThrowIfCancellationRequested();
            if (_process.HasExited)
            {
                StopCopying();
                throw new IrrException($"engine-serve: the server exited with code {_process.ExitCode} before it served ({LogPath}){Tail()}");
            }
            try
            {
                using var probe = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
                probe.CancelAfter(TimeSpan.FromSeconds(5));
                using var response = client.GetAsync(models, HttpCompletionOption.ResponseHeadersRead, probe.Token).GetAwaiter().GetResult();
                if (response.StatusCode == HttpStatusCode.OK)
                {
                    // A real list is a few KB: one larger than 1 MiB is not checked (nor read further).
                    var (body, whole) = OpenAiClient.ReadBodyAsync(response.Content, Math.Min(OpenAiClient.MaxReplyBytes, 1 << 20), probe.Token).GetAwaiter().GetResult();
                    if (whole) RequireServed(body);
                    return;
                }
            }
            catch (Exception e) when (e is HttpRequestException or IOException or OperationCanceledException && !cancellationToken.IsCancellationRequested)
            {
                // not listening yet
            }
            if (clock.Elapsed > timeout)
                throw new IrrException($"engine-serve: the server did not answer GET {models} within {timeout.TotalSeconds:0} s (engine-serve-timeout; {LogPath}){Tail()}");
            Task.Delay(poll, cancellationToken).GetAwaiter().GetResult();
        }
    }

    // The models the server lists (an OpenAI /v1/models body: data[].id) must include the served name, or every request
    // would be refused with 404: the command did not name the model with {name}. A body without a list is not checked.
    private void RequireServed(string body)
    {
        List<string> ids;
        try
        {
            ids = System.Text.Json.Nodes.JsonNode.Parse(body)?["data"]?.AsArray().Select(m => (string?)m?["id"]).OfType<string>().ToList() ?? [];
        }
        catch (Exception e) when (e is System.Text.Json.JsonException or InvalidOperationException or FormatException)
        {
            return;
        }
        if (ids.Count == 0 || ids.Contains(ServedModel)) return;
        throw new IrrException($"engine-serve: the server serves {string.Join(", ", ids.Take(TailLines).Select(i => $"'{OpenAiClient.Snippet(i)}'"))}{(ids.Count > TailLines ? ", …" : "")}, not '{ServedModel}': name the model with {{name}} " +
                               $"(vLLM: --served-model-name {{name}}, or with an adapter --lora-modules {{name}}={{adapter}}) ({LogPath})");
    }

    // The last lines of standard error, else of the log, for an error message.
    private string Tail()
    {
        lock (_gate)
            if (_lastErrors.Count > 0) return "; its last output: " + string.Join(" | ", _lastErrors.Select(OpenAiClient.Snippet));
        try
        {
            var lines = LastLines(LogPath).Where(l => !l.StartsWith("# irr engine-serve: ", StringComparison.Ordinal)).TakeLast(TailLines).ToList();
            return lines.Count == 0 ? "" : "; its last output: " + string.Join(" | ", lines.Select(OpenAiClient.Snippet));
        }
        catch (IOException)
        {
            return "";
        }
    }

    // The lines of a server's output as they come; a line longer than 64 Ki characters is passed on in pieces, so that
    // output without line breaks is never held whole.
    private static async IAsyncEnumerable<string> Lines(StreamReader from)
    {
        const int maxLine = 1 << 16;
        var buffer = new char[4096];
        var line = new StringBuilder();
        int read;
        while ((read = await from.ReadAsync(buffer).ConfigureAwait(false)) > 0)
        {
            int start = 0;
            for (int i = 0; i < read; i++)
            {
                if (buffer[i] != '\n') continue;
                line.Append(buffer, start, i - start);
                yield return line.ToString().TrimEnd('\r');
                line.Clear();
                start = i + 1;
            }
            line.Append(buffer, start, read - start);
            while (line.Length >= maxLine)
            {
                yield return line.ToString(0, maxLine);
                line.Remove(0, maxLine);
            }
        }
        if (line.Length > 0) yield return line.ToString().TrimEnd('\r');
    }

    // The non-empty lines of a log's last 64 KiB (a server may have logged gigabytes).
    private static IEnumerable<string> LastLines(string path)
    {
        using var file = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite);
        long start = Math.Max(0, file.Length - (1 << 16));
        file.Position = start;
        var bytes = new byte[file.Length - start];
        file.ReadExactly(bytes);
        var lines = Encoding.UTF8.GetString(bytes).Split('\n').Select(l => l.TrimEnd('\r')).Where(l => l.Length > 0);
        return start > 0 ? lines.Skip(1) : lines; // the first line is cut
    }

    private void StopCopying()
    {
        Task.WaitAll([_copyOut, _copyErr], TimeSpan.FromSeconds(5));
    }

    /// <summary>A port on 127.0.0.1 no one listens on now (the OS's choice for port 0), for a server to bind a moment later.</summary>
    public static int FreePort()
    {
        var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        int port = ((IPEndPoint)listener.LocalEndpoint).Port;
        listener.Stop();
        return port;
    }

    // The servers started and not yet stopped. A signal that ends irr at once (a second Ctrl-C; SIGTERM or SIGINT outside a
    // command, in a library user) skips every Dispose, so Interruption's last resort stops them first: a server must not
    // outlive irr, holding its GPU and port. Not SIGHUP: under nohup it is ignored and irr goes on, with its servers (.NET
    // leaves an ignored SIGINT ignored, with no handler called). A first signal inside a command unwinds through Dispose.
    private static readonly HashSet<EngineServer> Live = [];

    private static void Track(EngineServer server, bool live)
    {
        lock (Live)
        {
            if (!live)
            {
                Live.Remove(server);
                return;
            }
            Live.Add(server);
            Interruption.EnsureSignalHandlers();
        }
    }

    /// <summary>Kills every started server's process tree at once (<see cref="Interruption.LastResort"/>).</summary>
    internal static void KillLive()
    {
        EngineServer[] servers;
        lock (Live) servers = [.. Live];
        foreach (var server in servers)
        {
            try
            {
                server._process.Kill(entireProcessTree: true);
            }
            catch (Exception e) when (e is InvalidOperationException or System.ComponentModel.Win32Exception)
            {
            }
        }
    }

    /// <summary>Stops the server: kills the command's process tree and closes the log.</summary>
    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        Track(this, live: false);
        try
        {
            if (!_process.HasExited) _process.Kill(entireProcessTree: true);
            _process.WaitForExit(10_000);
        }
        catch (InvalidOperationException)
        {
        }
        StopCopying();
        _log.Dispose();
        _process.Dispose();
    }
}
