using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Text.Json.Nodes;

namespace Irr.Tests.Eval;

/// <summary>
/// A real HTTP server on 127.0.0.1 (HttpListener on a free port) that plays an OpenAI-compatible judge:
/// <see cref="Reply"/> decides, per request, the status, the reply text (wrapped as a chat completion) or a hang.
/// It counts requests and records their Authorization headers and bodies.
/// </summary>
internal sealed class FakeJudgeServer : IDisposable
{
    /// <summary>What the server does with one request.</summary>
    public sealed record Answer(int Status = 200, string? Content = null, string? RawBody = null, TimeSpan? Delay = null, string? RetryAfter = null);

    private readonly HttpListener _listener = new();
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _loop;
    private int _requests;

    public FakeJudgeServer(Func<JsonNode, int, Answer> reply)
    {
        Reply = reply;
        for (int attempt = 0; ; attempt++)
        {
            int port = Irr.Eval.EngineServer.FreePort();
            try
            {
                _listener.Prefixes.Clear();
                _listener.Prefixes.Add($"http://127.0.0.1:{port}/");
                _listener.Start();
                Url = $"http://127.0.0.1:{port}";
                break;
            }
            catch (HttpListenerException) when (attempt < 5)
            {
            }
        }
        _loop = Task.Run(Loop);
    }

    /// <summary>The server's base URL, e.g. http://127.0.0.1:41234.</summary>
    public string Url { get; } = "";

    /// <summary>Decides the answer from the request body and the 1-based number of this request.</summary>
    public Func<JsonNode, int, Answer> Reply { get; set; }

    public int Requests => Volatile.Read(ref _requests);

    public ConcurrentQueue<string?> AuthorizationHeaders { get; } = new();

    public ConcurrentQueue<string> Paths { get; } = new();

    public int MaxInFlight => Volatile.Read(ref _maxInFlight);

    private int _inFlight, _maxInFlight;

    /// <summary>The last user message of a chat request (the judged conversation for Llama Guard is user + assistant).</summary>
    public static string UserText(JsonNode body) => (string)body["messages"]!.AsArray().First(m => (string)m!["role"]! == "user")!["content"]!;

    public static string AssistantText(JsonNode body) => (string?)body["messages"]!.AsArray().FirstOrDefault(m => (string)m!["role"]! == "assistant")?["content"] ?? "";


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
            _ = Task.Run(() => Handle(context));
        }
    }

    private async Task Handle(HttpListenerContext context)
    {
        int n = Interlocked.Increment(ref _requests);
        int inFlight = Interlocked.Increment(ref _inFlight);
        int seen;
        while ((seen = Volatile.Read(ref _maxInFlight)) < inFlight && Interlocked.CompareExchange(ref _maxInFlight, inFlight, seen) != seen) { }
        try
        {
            AuthorizationHeaders.Enqueue(context.Request.Headers["Authorization"]);
            Paths.Enqueue(context.Request.Url!.AbsolutePath);
            string text;
            using (var reader = new StreamReader(context.Request.InputStream, Encoding.UTF8)) text = await reader.ReadToEndAsync();
            var answer = Reply(JsonNode.Parse(text)!, n);
            if (answer.Delay is { } delay) await Task.Delay(delay, _stop.Token).ContinueWith(_ => { });
            context.Response.StatusCode = answer.Status;
            if (answer.RetryAfter is not null) context.Response.Headers["Retry-After"] = answer.RetryAfter;
            string body = answer.RawBody ?? new JsonObject
            {
                ["id"] = "x",
                ["object"] = "chat.completion",
                ["choices"] = new JsonArray(new JsonObject { ["index"] = 0, ["message"] = new JsonObject { ["role"] = "assistant", ["content"] = answer.Content ?? "" } }),
            }.ToJsonString();
            byte[] bytes = Encoding.UTF8.GetBytes(body);
            context.Response.ContentType = "application/json";
            context.Response.ContentLength64 = bytes.Length;
            await context.Response.OutputStream.WriteAsync(bytes);
            context.Response.Close();
        }
        catch (Exception)
        {
            // The client gave up (a timeout test) or the server is stopping.
            try { context.Response.Abort(); } catch (Exception) { }
        }
        finally
        {
            Interlocked.Decrement(ref _inFlight);
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
