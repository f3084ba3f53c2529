using System.Net;
using System.Net.Sockets;
using System.Text;

namespace Irr.Tests.Eval;

/// <summary>
/// A raw HTTP/1.1 server on 127.0.0.1 that answers every request with a huge body, generated as it is sent (never held
/// in memory): a completions/chat reply whose text runs on for <see cref="Bytes"/> bytes, framed as <see cref="Framing"/>
/// says (a true Content-Length, chunked, none with the connection closed at the end, or a Content-Length that lies).
/// Written on raw sockets because the framing is the point; it stops sending when the client hangs up.
/// </summary>
public sealed class HugeReplyServer : IDisposable
{
    public enum Framing { ContentLength, Chunked, CloseDelimited, ShortContentLength }

    private readonly TcpListener _listener = new(IPAddress.Loopback, 0);
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _loop;
    private int _requests;

    public HugeReplyServer(Framing framing, long bytes, int status = 200, bool manyTokens = false)
    {
        ManyTokens = manyTokens;
        Framing_ = framing;
        Bytes = bytes;
        Status = status;
        _listener.Start();
        Url = $"http://127.0.0.1:{((IPEndPoint)_listener.LocalEndpoint).Port}";
        _loop = Task.Run(Loop);
    }

    private Framing Framing_ { get; }

    public long Bytes { get; }

    /// <summary>
    /// Whether the body is a valid completion whose bulk is a list of millions of zeros before it
    /// (<c>{"junk":[0,0,…,0],"choices":[{"index":0,"text":" ok","finish_reason":"stop"}]}</c>): JSON of the most tokens per byte.
    /// </summary>
    public bool ManyTokens { get; }

    public int Status { get; }

    public string Url { get; }

    public int Requests => Volatile.Read(ref _requests);

    /// <summary>Bytes the server managed to send in all (the client stops reading at its limit).</summary>
    public long Sent => Interlocked.Read(ref _sent);

    private long _sent;

    private async Task Loop()
    {
        while (!_stop.IsCancellationRequested)
        {
            TcpClient client;
            try
            {
                client = await _listener.AcceptTcpClientAsync(_stop.Token);
            }
            catch (Exception) when (_stop.IsCancellationRequested)
            {
                return;
            }
            _ = Task.Run(() => Handle(client));
        }
    }

    private async Task Handle(TcpClient client)
    {
        using (client)
        {
            try
            {
                var stream = client.GetStream();
                await ReadRequest(stream);
                Interlocked.Increment(ref _requests);
                // {"choices":[{"index":0,"text":"aaaa…","message":{"role":"assistant","content":"aaaa…"}}]}: too long to read, whatever the API.
                byte[] head = ManyTokens ? "{\"junk\":["u8.ToArray() : "{\"choices\":[{\"index\":0,\"finish_reason\":\"stop\",\"text\":\""u8.ToArray();
                byte[] tail = ManyTokens ? "0],\"choices\":[{\"index\":0,\"text\":\" ok\",\"finish_reason\":\"stop\"}]}"u8.ToArray() : "\"}]}"u8.ToArray();
                long fill = Bytes - head.Length - tail.Length;
                string framing = Framing_ switch
                {
                    Framing.ContentLength => $"Content-Length: {Bytes}\r\n",
                    Framing.ShortContentLength => "Content-Length: 50\r\n",
                    Framing.Chunked => "Transfer-Encoding: chunked\r\n",
                    _ => "Connection: close\r\n",
                };
                await stream.WriteAsync(Encoding.ASCII.GetBytes($"HTTP/1.1 {Status} Whatever\r\nContent-Type: application/json\r\n{framing}\r\n"));
                var chunk = new byte[1 << 16];
                if (ManyTokens)
                    for (int i = 0; i < chunk.Length; i++) chunk[i] = i % 2 == 0 ? (byte)'0' : (byte)',';
                else
                    Array.Fill(chunk, (byte)'a');
                await Send(stream, head);
                for (long left = fill; left > 0; left -= chunk.Length)
                    await Send(stream, chunk.AsMemory(0, (int)Math.Min(chunk.Length, left)));
                await Send(stream, tail);
                if (Framing_ == Framing.Chunked) await stream.WriteAsync("0\r\n\r\n"u8.ToArray());
            }
            catch (Exception)
            {
                // The client hung up (it read what its limit allows) or the server is stopping.
            }
        }
    }

    private async Task Send(NetworkStream stream, ReadOnlyMemory<byte> data)
    {
        if (Framing_ == Framing.Chunked) await stream.WriteAsync(Encoding.ASCII.GetBytes($"{data.Length:x}\r\n"), _stop.Token);
        await stream.WriteAsync(data, _stop.Token);
        if (Framing_ == Framing.Chunked) await stream.WriteAsync("\r\n"u8.ToArray(), _stop.Token);
        Interlocked.Add(ref _sent, data.Length);
    }

    // The request line and headers, then Content-Length bytes of body.
    private static async Task ReadRequest(NetworkStream stream)
    {
        var header = new List<byte>();
        var one = new byte[1];
        while (!(header.Count >= 4 && header[^4] == '\r' && header[^3] == '\n' && header[^2] == '\r' && header[^1] == '\n'))
        {
            if (await stream.ReadAsync(one) == 0) throw new IOException("closed");
            header.Add(one[0]);
        }
        string text = Encoding.ASCII.GetString([.. header]);
        int length = text.Split("\r\n").Where(l => l.StartsWith("Content-Length:", StringComparison.OrdinalIgnoreCase))
            .Select(l => int.Parse(l["Content-Length:".Length..].Trim())).FirstOrDefault();
        var body = new byte[length];
        await stream.ReadExactlyAsync(body);
    }

    public void Dispose()
    {
        _stop.Cancel();
        _listener.Stop();
        try { _loop.Wait(TimeSpan.FromSeconds(2)); } catch (AggregateException) { }
    }
}
