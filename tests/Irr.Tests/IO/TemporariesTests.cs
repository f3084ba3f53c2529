using System.Diagnostics;
using Irr.IO;
using Irr.Tests.Cli;

namespace Irr.Tests.IO;

/// <summary>
/// Temporaries a killed run left behind (SIGKILL: nothing can catch it), and two runs writing one output (issue 24).
/// The owner of a temporary is the process id in its name (<c>.NAME.irr-tmp-PID-XXXXXXXX</c>); a process is alive when
/// /proc has it, and is irr when its command line says so (proc(5): /proc/PID/cmdline).
/// </summary>
public class TemporariesTests
{
    // A process id that no process has now: a child that has run and been reaped.
    private static int DeadPid()
    {
        using var p = Process.Start(new ProcessStartInfo("true") { UseShellExecute = false })!;
        p.WaitForExit();
        int pid = p.Id;
        Assert.False(Directory.Exists($"/proc/{pid}"));
        return pid;
    }

    private static List<string> Warnings(Action work)
    {
        var said = new List<string>();
        using (Diagnostics.Listen(said.Add)) work();
        return said;
    }

    [Fact]
    public void AStaleTemporaryDirectoryOfADeadProcessIsRemovedWithAWarning()
    {
        using var dir = new TempDir();
        int pid = DeadPid();
        string stale = dir[$".out.irr-tmp-{pid}-abcd1234"];
        Directory.CreateDirectory(Path.Combine(stale, "sub"));
        File.WriteAllText(Path.Combine(stale, "sub", "model.safetensors"), "half");
        string previous = dir[$".out.irr-tmp-{pid}-abcd1234.previous"]; // a killed overwrite's set-aside copy
        Directory.CreateDirectory(previous);
        string other = dir[$".outer.irr-tmp-{pid}-abcd1234"]; // another target's: not this run's business
        Directory.CreateDirectory(other);

        var said = Warnings(() =>
        {
            using var output = OutputDirectory.Create(dir["out"], []);
            File.WriteAllText(output.PathOf("a.txt"), "a");
            output.Commit();
        });

        Assert.False(Directory.Exists(stale));
        Assert.False(Directory.Exists(previous)); // put back as out (empty here), then replaced by this run's result
        Assert.True(Directory.Exists(other));
        Assert.Equal(2, said.Count);
        Assert.Contains($"restored {dir["out"]} from {previous}, where irr process {pid} had moved it aside before it was killed while replacing it", said);
        Assert.Contains($"removed {stale}, left by irr process {pid} that was killed before it finished", said);
        Assert.Equal("a", File.ReadAllText(dir["out/a.txt"]));
        Assert.False(File.Exists(dir[".out.irr-lock"]));
    }

    [Fact]
    public void TheCommandLineSaysWhichStaleTemporaryItRemovedInOneWarningLine()
    {
        using var dir = new TempDir();
        string model = ModelCommandTests.ChatModel(dir);
        Cli.IrrCommandTests.Records(dir, "task.jsonl", 4, "compute");
        int pid = DeadPid();
        string stale = dir[$".trained.irr-tmp-{pid}-abcd1234"];
        Directory.CreateDirectory(stale);
        File.WriteAllText(Path.Combine(stale, "model.safetensors"), "half-written by a run killed with SIGKILL");
        var run = CliRunner.Run("train", "--model", model, "--data", dir["task.jsonl"], "--full", "--epochs", "1", "-o", dir["trained"]);
        Assert.True(run.Code == 0, run.Err);
        Assert.Single(run.Err.Split('\n'), l => l == $"warning: removed {stale}, left by irr process {pid} that was killed before it finished");
        Assert.Equal(["model", "task.jsonl", "trained"], Directory.GetFileSystemEntries(dir.Path).Select(Path.GetFileName).Order());
    }

    [Fact]
    public void AStaleTemporaryFileIsRemovedByTheNextAtomicWriteOfTheSameFile()
    {
        using var dir = new TempDir();
        int pid = DeadPid();
        string stale = dir[$".safety.json.irr-tmp-{pid}-0badf00d"];
        File.WriteAllText(stale, "{\"half\":");
        string legacy = dir[$".safety.json.irr-tmp-{pid}"]; // the PID-only name of earlier versions
        File.WriteAllText(legacy, "{");
        var said = Warnings(() => AtomicFile.WriteText(dir["safety.json"], "{}"));
        Assert.False(File.Exists(stale));
        Assert.False(File.Exists(legacy));
        Assert.Equal(2, said.Count);
        Assert.Equal("{}", File.ReadAllText(dir["safety.json"]));
        Assert.Equal(["safety.json"], Directory.GetFileSystemEntries(dir.Path).Select(Path.GetFileName));
    }

    [Fact]
    public void ATemporaryOfALiveIrrIsLeftAloneAndAReusedProcessIdDoesNotKeepOne()
    {
        using var dir = new TempDir();
        // A live process whose command line names irr, and a live one that is not irr (its id reused by another program).
        using var irrLike = Process.Start(new ProcessStartInfo("sh", ["-c", "sleep 60", "irr-writer"]) { UseShellExecute = false })!;
        using var unrelated = Process.Start(new ProcessStartInfo("sleep", ["60"]) { UseShellExecute = false })!;
        try
        {
            string live = dir[$".out.irr-tmp-{irrLike.Id}-11111111"], reused = dir[$".out.irr-tmp-{unrelated.Id}-22222222"];
            Directory.CreateDirectory(live);
            Directory.CreateDirectory(reused);
            var said = Warnings(() => OutputDirectory.Create(dir["out"], []).Dispose());
            Assert.True(Directory.Exists(live));
            Assert.False(Directory.Exists(reused));
            Assert.Equal([$"removed {reused}, left by irr process {unrelated.Id} that was killed before it finished"], said);
        }
        finally
        {
            irrLike.Kill();
            unrelated.Kill();
        }
    }

    [Fact]
    public void TheOwnerIsTheProcessIdAfterTheMarker()
    {
        Assert.Equal(4711, Temporaries.OwnerOf("4711-abcd1234"));
        Assert.Equal(4711, Temporaries.OwnerOf("4711"));
        Assert.Equal(4711, Temporaries.OwnerOf("4711-abcd1234.previous"));
        Assert.Equal(0, Temporaries.OwnerOf("x-4711"));
        Assert.Equal(0, Temporaries.OwnerOf(""));
        Assert.Equal(0, Temporaries.OwnerOf("99999999999999-a"));
    }

    [Fact]
    public void ASecondWriterOfTheSameOutputInOneProcessFailsBeforeAnyWork()
    {
        using var dir = new TempDir();
        using var first = OutputDirectory.Create(dir["out"], []);
        var e = Assert.Throws<IrrException>(() => OutputDirectory.Create(dir["out"], []));
        Assert.Equal($"{dir["out"]}: is being written by another job of this irr process; choose another output", e.Message);
        Assert.Single(Directory.GetDirectories(dir.Path, ".out.irr-tmp-*")); // the first's only
        File.WriteAllText(first.PathOf("a.txt"), "first");
        first.Commit();
        Assert.Equal("first", File.ReadAllText(dir["out/a.txt"]));
        Assert.Equal(["out"], Directory.GetFileSystemEntries(dir.Path).Select(Path.GetFileName));
        // Released: the next writer may go on.
        using var next = OutputDirectory.Create(dir["out"], [], overwrite: true);
    }

    [Fact]
    public void ALockTakenInsideAnotherOutputsTemporaryIsDeletedWhereThatOutputWasCommitted()
    {
        // irr demo writes its models inside its own temporary directory and commits that directory before the command
        // ends and lets go of the models' locks: a successful demo left 47 .NAME.irr-lock files in ./irr-demo. A lock
        // file is deleted when it is let go (OutputLock's contract), wherever its directory has moved meanwhile.
        using var dir = new TempDir();
        using (OutputLock.HoldForCommand())
        {
            using var demo = OutputDirectory.Create(dir["demo"], []);
            using (var model = OutputDirectory.Create(Path.Combine(demo.PathOf("models"), "aligned"), []))
            {
                File.WriteAllText(model.PathOf("config.json"), "{}");
                model.Commit();
            }
            Assert.True(File.Exists(Path.Combine(demo.PathOf("models"), ".aligned.irr-lock"))); // held until the command ends
            demo.Commit();
        }
        Assert.Equal("{}", File.ReadAllText(dir["demo/models/aligned/config.json"]));
        Assert.Empty(Directory.GetFiles(dir.Path, "*.irr-*", SearchOption.AllDirectories));
        Assert.Equal(["demo"], Directory.GetFileSystemEntries(dir.Path).Select(Path.GetFileName));
    }

    [Fact]
    public void AnOutputThatAppearsWhileItIsWrittenKeepsThisRunsResultUnderTheNameItGives()
    {
        using var dir = new TempDir();
        string kept;
        using (var output = OutputDirectory.Create(dir["out"], []))
        {
            File.WriteAllText(output.PathOf("model.safetensors"), "mine");
            Directory.CreateDirectory(dir["out"]);
            File.WriteAllText(dir["out/theirs.txt"], "theirs"); // another program wrote the target meanwhile
            var e = Assert.Throws<IrrException>(output.Commit);
            string prefix = $"{dir["out"]}: appeared while it was being written (by another program); this run's result is kept in ";
            Assert.StartsWith(prefix, e.Message);
            kept = e.Message[prefix.Length..];
        }
        Assert.Equal($"{dir["out"]}.irr-{Environment.ProcessId}", kept);
        Assert.Equal("mine", File.ReadAllText(Path.Combine(kept, "model.safetensors"))); // still there after Dispose
        Assert.Equal("theirs", File.ReadAllText(dir["out/theirs.txt"]));
        Assert.Empty(Directory.GetFileSystemEntries(dir.Path, ".*"));
    }

    [Fact]
    public void ASecondIrrWritingTheSameOutputFailsAtOnceNamingTheFirst()
    {
        using var dir = new TempDir();
        string model = ModelCommandTests.ChatModel(dir);
        Cli.IrrCommandTests.Records(dir, "task.jsonl", 4, "compute");
        string[] train = ["train", "--model", model, "--data", dir["task.jsonl"], "--full", "--epochs", "100000", "-o", dir["trained"]];
        using var first = IrrProcess.Start(train, dir.Path);
        try
        {
            // The first holds the output's lock from its first check, before its work.
            var clock = Stopwatch.StartNew();
            while (!File.Exists(dir[".trained.irr-lock"]))
            {
                Assert.False(first.HasExited, "the first run ended before it took the lock");
                Assert.True(clock.Elapsed < TimeSpan.FromSeconds(60), "no lock within 60 s");
                Thread.Sleep(20);
            }
            var second = IrrProcess.Run(train, dir.Path);
            IrrProcess.AssertOneLineError(second, $"{dir["trained"]}: another irr run (process {first.Id}) is writing it (its lock {dir[".trained.irr-lock"]}); wait for it to finish, or choose another output");
            Assert.False(first.HasExited);
        }
        finally
        {
            first.Kill(entireProcessTree: true);
            first.WaitForExit();
        }
        // Killed outright, the first left its lock; the next run takes it over (the lock died with its holder).
        var third = IrrProcess.Run(["train", "--model", model, "--data", dir["task.jsonl"], "--full", "--epochs", "1", "-o", dir["trained"]], dir.Path);
        Assert.True(third.Code == 0, third.Err);
        Assert.True(Directory.Exists(dir["trained"]));
        Assert.Empty(Directory.GetFileSystemEntries(dir.Path, ".trained*"));
    }
}
