using System.Net;

namespace Irr.Tests.Eval;

/// <summary>
/// A real HTTP server on a free port of this machine (HttpListener) that hands every request to a handler on its own task:
/// what the fake judge and the fake Hub serve from. Listens under each host name given (127.0.0.1, localhost …).
/// </summary>
internal sealed class LoopbackHttpServer : IDisposable
{
    private readonly HttpListener _listener = new();
    private readonly CancellationTokenSource _stop = new();
    private readonly Func<HttpListenerContext, Task> _handle;
    private readonly Task _loop;

    public LoopbackHttpServer(Func<HttpListenerContext, Task> handle, params string[] hosts)
    {
        _handle = handle;
        for (int attempt = 0; ; attempt++)
        {
            int port = Irr.Eval.EngineServer.FreePort();
            try
            {
                _listener.Prefixes.Clear();
                foreach (string host in hosts) _listener.Prefixes.Add($"http://{host}:{port}/");
                _listener.Start();
                Port = port;
                break;
            }
            catch (HttpListenerException) when (attempt < 5)
            {
            }
        }
        _loop = Task.Run(Loop);
    }

    /// <summary>The port it listens on.</summary>
    public int Port { get; }

    /// <summary>Cancelled when the server stops (for a handler's delays).</summary>
    public CancellationToken Stopping => _stop.Token;

    private async Task Loop()
    {
        while (!_stop.IsCancellationRequested)
        {
            HttpListenerContext context;
            try
            {
                context = await _listener.GetContextAsync();
            }
            catch (Exception) when (_stop.IsCancellationRequested || !_listener.IsListening)
            {
                return;
            }
            _ = Task.Run(() => _handle(context));
        }
    }

    public void Dispose()
    {
        _stop.Cancel();
        // Close alone (it stops the listener too): Stop then Close removes the prefix twice, and the second removal can
        // look the port's listener up anew and try to bind it, failing with "Address already in use" when another test has
        // taken the port meanwhile (seen under load). A failure to close a test server changes nothing the test checks.
        try { _listener.Close(); } catch (HttpListenerException) { }
        try { _loop.Wait(TimeSpan.FromSeconds(2)); } catch (AggregateException) { }
    }
}
