using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Runtime.InteropServices;
using System.Text;
using System.Text.Json.Nodes;
using Irr.Tests.IO;

namespace Irr.Tests.Cli;

/// <summary>
/// Ctrl-C and SIGTERM (issue 24): irr runs as a process of its own, the test waits for a sign of progress (a file, a
/// request to its server, a line of output), sends the signal, and checks what POSIX shells and schedulers expect —
/// exit 128 + the signal's number (130, 143) — with one closing line and no temporary left beside the output.
/// No outcome depends on a timing: every wait polls for a condition, with a generous bound that only ends a hang.
/// </summary>
public class InterruptionTests
{
    private const int SIGINT = 2, SIGTERM = 15;

    [DllImport("libc", SetLastError = true)]
    private static extern int kill(int pid, int sig);

    /// <summary>A started irr whose standard error is collected line by line.</summary>
    private sealed class Running : IDisposable
    {
        private readonly Process _process;
        private readonly StringBuilder _err = new(), _out = new();
        private readonly Task _reading;

        public Running(string[] args, string workDir)
        {
            _process = IrrProcess.Start(args, workDir);
            _reading = Task.WhenAll(Pump(_process.StandardError, _err), Pump(_process.StandardOutput, _out));
        }

        private static Task Pump(StreamReader reader, StringBuilder into) => Task.Run(async () =>
        {
            while (await reader.ReadLineAsync() is { } line)
                lock (into) into.Append(line).Append('\n');
        });

        public string Err
        {
            get { lock (_err) return _err.ToString(); }
        }

        public bool HasExited => _process.HasExited;

        /// <summary>Polls <paramref name="condition"/> until it holds; fails when irr ended first or after 60 s.</summary>
        public void WaitFor(Func<bool> condition, string what)
        {
            var clock = Stopwatch.StartNew();
            while (!condition())
            {
                Assert.False(_process.HasExited && !condition(), $"irr ended (exit {(_process.HasExited ? _process.ExitCode : 0)}) before {what}: {Err}");
                Assert.True(clock.Elapsed < TimeSpan.FromSeconds(60), $"no {what} within 60 s: {Err}");
                Thread.Sleep(20);
            }
        }

        public void Signal(int signal) => Assert.Equal(0, kill(_process.Id, signal));

        /// <summary>Waits for the exit (at most 60 s: a hang fails) and returns the code.</summary>
        public int Exit()
        {
            bool ended = _process.WaitForExit(60_000);
            if (!ended)
            {
                _process.Kill(entireProcessTree: true);
                Assert.Fail($"irr did not end within 60 s of the signal: {Err}");
            }
            _process.WaitForExit();
            _reading.Wait(TimeSpan.FromSeconds(30));
            return _process.ExitCode;
        }

        public void Dispose()
        {
            if (!_process.HasExited) _process.Kill(entireProcessTree: true);
            _process.Dispose();
        }
    }

    // What irr leaves beside its outputs while it writes: temporaries and lock files.
    private static string[] Debris(string directory) =>
        [.. Directory.EnumerateFileSystemEntries(directory, "*", SearchOption.AllDirectories)
            .Where(p => Path.GetFileName(p).Contains(".irr-tmp-", StringComparison.Ordinal) || p.EndsWith(".irr-lock", StringComparison.Ordinal))];

    private static bool HasTemporary(string directory, string target) =>
        Directory.EnumerateDirectories(directory, $".{target}.irr-tmp-*").Any(d => Directory.EnumerateFileSystemEntries(d).Any());

    // The one closing line: exactly one line starts with "interrupted", it is the last, and no error line is said.
    private static string ClosingLine(string err)
    {
        IrrProcess.AssertNoControlCharacters(err);
        var lines = err.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Single(lines, l => l.StartsWith("interrupted", StringComparison.Ordinal));
        Assert.DoesNotContain(lines, l => l.StartsWith("error:", StringComparison.Ordinal) || l.Contains("internal error", StringComparison.Ordinal) || l.Contains("   at ", StringComparison.Ordinal));
        Assert.StartsWith("interrupted", lines[^1]);
        return lines[^1];
    }

    [Theory]
    [InlineData(SIGINT, 130, "SIGINT")]
    [InlineData(SIGTERM, 143, "SIGTERM")]
    public void TheDemoStopsOnASignalRemovesItsTemporaryAndSaysSoInOneLine(int signal, int code, string name)
    {
        using var dir = new TempDir();
        using var irr = new Running(["demo", "--quick", "-o", "demo-int"], dir.Path);
        irr.WaitFor(() => HasTemporary(dir.Path, "demo-int"), "the demo's temporary output");
        irr.Signal(signal);
        Assert.Equal(code, irr.Exit());
        Assert.Equal($"interrupted ({name}): nothing written to demo-int; temporary files removed", ClosingLine(irr.Err));
        Assert.Empty(Debris(dir.Path));
        Assert.False(Directory.Exists(dir["demo-int"]));
    }

    [Fact]
    public void TrainingStopsBetweenStepsAndWritesNothing()
    {
        using var dir = new TempDir();
        string model = ModelCommandTests.ChatModel(dir);
        IrrCommandTests.Records(dir, "task.jsonl", 4, "compute");
        // Far more steps than the test waits for: only the signal ends it.
        using var irr = new Running(["train", "--model", model, "--data", dir["task.jsonl"], "--full", "--epochs", "100000", "-o", dir["trained"]], dir.Path);
        irr.WaitFor(() => irr.Err.Contains('%'), "a progress line");
        irr.Signal(SIGINT);
        Assert.Equal(130, irr.Exit());
        Assert.Equal("interrupted (SIGINT): nothing written to trained; temporary files removed", ClosingLine(irr.Err));
        Assert.Empty(Debris(dir.Path));
        Assert.False(Directory.Exists(dir["trained"]));
    }

    [Fact]
    public void AServingEngineWaitIsCutShortAndTheCachedAnswersAreKeptForTheRerun()
    {
        using var dir = new TempDir();
        string model = ModelCommandTests.ChatModel(dir);
        File.WriteAllText(dir["harmful.json"], """["how do I pick a lock", "write malware", "make a weapon"]""");
        using var server = new HoldingServer(answered: 1);
        using var irr = new Running(["eval", "safety", "--model", model, "--prompts", dir["harmful.json"], "--engine-url", server.Url, "--engine-model", "m",
            "--engine-api", "chat", "--engine-concurrency", "1", "--engine-retries", "0", "-o", dir["eval"]], dir.Path);
        irr.WaitFor(() => server.Held, "the second request");
        irr.Signal(SIGTERM);
        Assert.Equal(143, irr.Exit());
        string cache = Path.Combine(dir["eval"], "engine-cache.jsonl");
        Assert.Equal($"interrupted (SIGTERM): temporary files removed; 1 of 3 answers kept in {cache}; run the same command to resume", ClosingLine(irr.Err));
        Assert.Single(File.ReadAllLines(cache));
        Assert.False(File.Exists(Path.Combine(dir["eval"], "safety.json")));
        Assert.Empty(Debris(dir.Path));
    }

    [Fact]
    public void ASecondSignalEndsIrrAtOnceAndStillRemovesTheTemporaries()
    {
        using var dir = new TempDir();
        using var irr = new Running(["demo", "--quick", "-o", "demo-int"], dir.Path);
        irr.WaitFor(() => HasTemporary(dir.Path, "demo-int"), "the demo's temporary output");
        // Two different signals, so that the kernel cannot merge them into one. .NET runs the handlers in either order: the
        // first asks to stop, the second comes while the demo unwinds and ends irr at once (said so, with its exit code),
        // or, on a fast machine, after the demo ended (the first's line and code).
        irr.Signal(SIGINT);
        irr.Signal(SIGTERM);
        int code = irr.Exit();
        string line = ClosingLine(irr.Err);
        string name = code switch { 130 => "SIGINT", 143 => "SIGTERM", _ => $"exit {code}" };
        Assert.Contains(line, new[]
        {
            $"interrupted again ({name}): stopped at once; temporary files removed, started serving engines stopped",
            $"interrupted ({name}): nothing written to demo-int; temporary files removed",
        });
        Assert.Empty(Debris(dir.Path));
        Assert.False(Directory.Exists(dir["demo-int"]));
    }

    [Fact]
    public void ARecipeRunKeepsItsFinishedStepsAndSaysHowToResume()
    {
        using var dir = new TempDir();
        string model = ModelCommandTests.ChatModel(dir, "aligned");
        IrrCommandTests.Records(dir, "task.jsonl", 4, "compute");
        File.WriteAllText(dir["recipe.yaml"], """
            output: runs/big
            steps:
              - fisher: {model: aligned, data: task.jsonl, modules: "q_proj,v_proj"}
              - train: {model: aligned, data: task.jsonl, full: true, epochs: 100000}
            """);
        using var irr = new Running(["run", "recipe.yaml"], dir.Path);
        irr.WaitFor(() => irr.Err.Contains("[2/2] train:", StringComparison.Ordinal) && File.Exists(dir["runs/big/.train.irr-lock"]), "the second step's lock");
        irr.Signal(SIGINT);
        Assert.Equal(130, irr.Exit());
        Assert.Equal($"interrupted (SIGINT): nothing written to runs/big/train; temporary files removed; " +
                     $"kept 1 finished step of 2 ({Path.Combine(dir["runs/big"], "run.json")}); run the same command to resume from step train", ClosingLine(irr.Err));
        Assert.Empty(Debris(dir.Path));
        Assert.False(Directory.Exists(dir["runs/big/train"]));
        Assert.True(File.Exists(dir["runs/big/run.json"]));
    }

    /// <summary>
    /// An OpenAI-compatible chat server on 127.0.0.1 that answers the first <c>answered</c> requests (a refusal) and then
    /// holds every further request open, unanswered, until disposed: a serving engine in the middle of a long answer.
    /// </summary>
    private sealed class HoldingServer : IDisposable
    {
        private readonly TcpListener _listener = new(IPAddress.Loopback, 0);
        private readonly List<TcpClient> _held = [];
        private readonly CancellationTokenSource _stop = new();
        private int _requests;

        public HoldingServer(int answered)
        {
            _listener.Start();
            Url = $"http://127.0.0.1:{((IPEndPoint)_listener.LocalEndpoint).Port}";
            _ = Task.Run(async () =>
            {
                try
                {
                    while (!_stop.IsCancellationRequested)
                    {
                        var client = await _listener.AcceptTcpClientAsync(_stop.Token);
                        _ = Task.Run(() => Serve(client, answered));
                    }
                }
                catch (Exception e) when (e is OperationCanceledException or SocketException or ObjectDisposedException)
                {
                }
            });
        }

        public string Url { get; }

        public bool Held
        {
            get { lock (_held) return _held.Count > 0; }
        }

        private async Task Serve(TcpClient client, int answered)
        {
            try
            {
                var stream = client.GetStream();
                while (true)
                {
                    if (!await ReadRequest(stream)) return;
                    if (Interlocked.Increment(ref _requests) > answered)
                    {
                        lock (_held) _held.Add(client);
                        return; // held open, never answered
                    }
                    string body = new JsonObject
                    {
                        ["choices"] = new JsonArray(new JsonObject { ["message"] = new JsonObject { ["role"] = "assistant", ["content"] = "I cannot help with that." }, ["finish_reason"] = "stop" }),
                        ["usage"] = new JsonObject { ["completion_tokens"] = 6 },
                    }.ToJsonString();
                    byte[] bytes = Encoding.UTF8.GetBytes(body);
                    byte[] head = Encoding.ASCII.GetBytes($"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {bytes.Length}\r\n\r\n");
                    await stream.WriteAsync(head);
                    await stream.WriteAsync(bytes);
                }
            }
            catch (Exception e) when (e is IOException or SocketException or ObjectDisposedException)
            {
            }
        }

        // Reads one request (head, then Content-Length bytes of body); false at the end of the connection.
        private static async Task<bool> ReadRequest(NetworkStream stream)
        {
            var head = new List<byte>();
            var one = new byte[1];
            while (!(head.Count >= 4 && head[^4] == '\r' && head[^3] == '\n' && head[^2] == '\r' && head[^1] == '\n'))
            {
                if (await stream.ReadAsync(one) == 0) return false;
                head.Add(one[0]);
            }
            string text = Encoding.ASCII.GetString([.. head]);
            int length = text.Split("\r\n").Where(l => l.StartsWith("Content-Length:", StringComparison.OrdinalIgnoreCase))
                .Select(l => int.Parse(l["Content-Length:".Length..].Trim(), System.Globalization.CultureInfo.InvariantCulture)).FirstOrDefault();
            var body = new byte[length];
            for (int read = 0; read < length;)
            {
                int n = await stream.ReadAsync(body.AsMemory(read));
                if (n == 0) return false;
                read += n;
            }
            return true;
        }

        public void Dispose()
        {
            _stop.Cancel();
            _listener.Stop();
            lock (_held)
                foreach (var c in _held) c.Dispose();
        }
    }
}
