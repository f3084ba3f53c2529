using Irr.Eval;
using Irr.Tests.IO;

namespace Irr.Tests.Eval;

/// <summary>--engine-serve: irr starts a server command per model, waits until it serves, and stops it (the command is a fake vLLM process).</summary>
public class EngineServerTests
{
    private static readonly HttpClient Client = new();

    // dotnet PATH/Irr.Tests.dll fake-engine: the test assembly run as a program (Program.Main).
    internal static string FakeEngine(string more) =>
        $"{EngineServer.Quote(Examples.ClusterScripts.DotnetHost())} {EngineServer.Quote(typeof(EngineServerTests).Assembly.Location)} fake-engine {more}";

    private static bool Alive(int pid)
    {
        try { return !System.Diagnostics.Process.GetProcessById(pid).HasExited; }
        catch (ArgumentException) { return false; }
    }

    [Fact]
    public async Task StartsTheCommandWithQuotedPlaceholdersWaitsUntilItServesAndStopsIt()
    {
        using var dir = new TempDir();
        // A path with a space and a quote: one argument after quoting, exactly.
        string model = Directory.CreateDirectory(dir["it's a model"]).FullName;
        string log = dir["serve.log"];
        int pid;
        using (var server = EngineServer.Start(FakeEngine("serve {model} --served-model-name {name} --port {port}"), model, null, "irr-s0.5", log,
                   TimeSpan.FromSeconds(25), Client, TimeSpan.FromMilliseconds(100)))
        {
            // {name}: the model's name, irr's process id and a count, unique on the machine.
            Assert.Matches($"^irr-s0\\.5-{Environment.ProcessId}-[0-9]+$", server.ServedModel);
            Assert.Equal("irr-s0.5", server.Name);
            Assert.Equal("127.0.0.1", server.Url.Host);
            using var models = await Client.GetAsync(new Uri(server.Url, "/v1/models"));
            Assert.Contains($"\"{server.ServedModel}\"", await models.Content.ReadAsStringAsync());
            var lines = File.ReadAllLines(log);
            Assert.Contains("arg: " + model, lines);
            Assert.Contains("arg: " + server.ServedModel, lines);
            Assert.Contains("arg: " + server.Url.Port, lines);
            pid = FindPid(server.Url.Port);
        }
        // Disposed: the process tree is gone and the port no longer answers.
        Assert.False(Alive(pid), "the fake engine still runs after Dispose");
    }

    // The fake engine's pid: the process listening on the port (a child of /bin/sh, or /bin/sh itself after exec).
    private static int FindPid(int port)
    {
        foreach (var p in System.Diagnostics.Process.GetProcesses())
        {
            try
            {
                string cmdline = File.ReadAllText($"/proc/{p.Id}/cmdline").Replace('\0', ' ');
                if (cmdline.Contains("fake-engine") && cmdline.Contains(" " + port)) return p.Id;
            }
            catch (IOException) { }
            catch (UnauthorizedAccessException) { }
        }
        throw new InvalidOperationException("fake engine process not found");
    }

    [Fact]
    public void AServerThatExitsBeforeServingIsAnErrorQuotingItsOutput()
    {
        using var dir = new TempDir();
        var e = Assert.Throws<IrrException>(() => EngineServer.Start(FakeEngine("serve {model} --port {port} --exit-before-serving 3"), dir.Path, null, "m",
            dir["serve.log"], TimeSpan.FromSeconds(25), Client, TimeSpan.FromMilliseconds(100)));
        Assert.StartsWith("engine-serve: the server exited with code 3 before it served (" + dir["serve.log"] + "); its last output: ", e.Message);
        Assert.True(e.Message.Contains("fake-engine: failing on purpose", StringComparison.Ordinal), e.Message);
        Assert.DoesNotContain('\n', e.Message);
    }

    [Fact]
    public void AServersOutputIsQuotedEscapedAndBounded()
    {
        // Terminal escapes and a 200,000-character line without a line break on standard error, then exit 4.
        using var dir = new TempDir();
        string command = "printf '\\033[31mred\\007\\n' >&2; head -c 200000 /dev/zero | tr '\\0' x >&2; exit 4 # {model} {port}";
        var e = Assert.Throws<IrrException>(() => EngineServer.Start(command, dir.Path, null, "m", dir["serve.log"], TimeSpan.FromSeconds(25), Client,
            TimeSpan.FromMilliseconds(100)));
        Assert.StartsWith("engine-serve: the server exited with code 4 before it served (" + dir["serve.log"] + "); its last output: \\x1b[31mred\\x07 | xxx", e.Message);
        Tests.Cli.IrrProcess.AssertNoControlCharacters(e.Message);
        Assert.True(e.Message.Length < 2000, $"{e.Message.Length} characters");
    }

    [Fact]
    public void AServerThatNeverServesTimesOutAndIsStopped()
    {
        using var dir = new TempDir();
        string marker = $"irr-engine-test-{Guid.NewGuid():N}";
        var clock = System.Diagnostics.Stopwatch.StartNew();
        var e = Assert.Throws<IrrException>(() => EngineServer.Start($"exec sleep 60 # {marker} {{model}} {{port}}", dir.Path, null, "m",
            dir["serve.log"], TimeSpan.FromSeconds(1), Client, TimeSpan.FromMilliseconds(100)));
        Assert.StartsWith("engine-serve: the server did not answer GET http://127.0.0.1:", e.Message);
        Assert.Contains("/v1/models within 1 s (engine-serve-timeout; ", e.Message);
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(15));
        // `exec sleep` replaced the shell; it was killed with the tree.
        bool Alive() => System.Diagnostics.Process.GetProcessesByName("sleep").Any(p =>
        {
            try { return File.ReadAllText($"/proc/{p.Id}/cmdline").Contains(marker); } catch (IOException) { return false; }
        });
        var reaped = System.Diagnostics.Stopwatch.StartNew(); // polled: a busy machine may take a moment to reap it
        while (Alive() && reaped.Elapsed < TimeSpan.FromSeconds(20)) Thread.Sleep(100);
        Assert.False(Alive(), "the server outlived the timeout by 20 s");
    }

    [Fact]
    public void AServerThatDoesNotServeTheNameIsRefusedAtOnce()
    {
        using var dir = new TempDir();
        // The command forgets {name}: the fake engine then serves under the model's path, as vLLM does.
        var e = Assert.Throws<IrrException>(() => EngineServer.Start(FakeEngine("serve {model} --port {port}"), dir.Path, null, "irr-s0.5",
            dir["serve.log"], TimeSpan.FromSeconds(25), Client, TimeSpan.FromMilliseconds(100)));
        string R(string text) => System.Text.RegularExpressions.Regex.Escape(text);
        Assert.Matches("^" + R($"engine-serve: the server serves '{dir.Path}', not 'irr-s0.5-{Environment.ProcessId}-") + "[0-9]+" +
                       R($"': name the model with {{name}} (vLLM: --served-model-name {{name}}, or with an adapter --lora-modules {{name}}={{adapter}}) ({dir["serve.log"]})") + "$",
            e.Message);
    }

    [Theory]
    [InlineData("vllm serve {model}", false, "engine-serve must contain {port}: irr chooses a free port for each server it starts (the command given: vllm serve {model})")]
    [InlineData("vllm serve --port {port}", false, "engine-serve must contain {model}: the model directory to serve (the command given: vllm serve --port {port})")]
    [InlineData("vllm serve {model} --port {port} {gpu}", false, "engine-serve: unknown placeholder {gpu} (use {model}, {adapter}, {name}, {port})")]
    [InlineData("vllm serve {model} --port {port}", true, "engine-serve must contain {adapter} to evaluate an adapter (e.g. vllm serve {model} --enable-lora --lora-modules {name}={adapter} --port {port})")]
    [InlineData("  ", false, "engine-serve must be a command line")]
    public void BadCommandsAreRefused(string command, bool adapter, string message) =>
        Assert.Equal(message, Assert.Throws<IrrException>(() => EngineServer.Check(command, adapter)).Message);

    [Fact]
    public void PlaceholdersAreShellQuoted()
    {
        string line = EngineServer.Expand("serve {model} --lora-modules {name}={adapter} --port {port}", "/m/a'b", "/m/ad", "x y", 8123);
        Assert.Equal("serve '/m/a'\\''b' --lora-modules 'x y'='/m/ad' --port 8123", line);
    }
}
