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

    private readonly LoopbackHttpServer _server;
    private int _requests;

    public FakeJudgeServer(Func<JsonNode, int, Answer> reply)
    {
        Reply = reply;
        _server = new LoopbackHttpServer(Handle, "127.0.0.1");
        Url = $"http://127.0.0.1:{_server.Port}";
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
            if (answer.Delay is { } delay) await Task.Delay(delay, _server.Stopping).ContinueWith(_ => { });
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

    public void Dispose() => _server.Dispose();
}
