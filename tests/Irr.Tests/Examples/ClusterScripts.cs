using System.Diagnostics;
using Irr.Tests.IO;
using Irr.Tests.Text;
using YamlDotNet.RepresentationModel;

namespace Irr.Tests.Examples;

/// <summary>
/// Runs the scripts of examples/cluster on this machine: `irr` on PATH is the built CLI, `sbatch` is a stand-in that runs a
/// job array's tasks one after another with Slurm's variables (tests/fixtures/cluster/sbatch), `vllm` is a fake engine
/// that serves the rule of <see cref="Eval.FakeEngineProcess"/> and records each start in vllm-starts.txt, and a Kubernetes Indexed
/// Job's container script is run once per index with JOB_COMPLETION_INDEX and the Job's own env (paths redirected).
/// </summary>
internal sealed class ClusterScripts
{
    private readonly TempDir _dir;

    public ClusterScripts(TempDir dir)
    {
        _dir = dir;
        Bin = Directory.CreateDirectory(dir["bin"]).FullName;
        string cli = Path.Combine(AppContext.BaseDirectory, "Irr.Cli.dll");
        File.WriteAllText(Path.Combine(Bin, "irr"), $"#!/bin/sh\nexec '{DotnetHost()}' '{cli}' \"$@\"\n");
        File.Copy(Fixtures.Local("cluster/sbatch"), Path.Combine(Bin, "sbatch"));
        // vllm: the test assembly's fake engine (Eval.FakeEngineProcess), which takes `serve MODEL --port N --served-model-name NAME`.
        File.WriteAllText(Path.Combine(Bin, "vllm"), $"#!/bin/sh\nexec '{DotnetHost()}' '{typeof(ClusterScripts).Assembly.Location}' fake-engine \"$@\" --record '{dir["vllm-starts.txt"]}'\n");
        if (!OperatingSystem.IsWindows())
            foreach (string f in Directory.GetFiles(Bin)) File.SetUnixFileMode(f, (UnixFileMode)0b111_101_101);
    }

    /// <summary>The directory put first on PATH.</summary>
    public string Bin { get; }

    /// <summary>A script of examples/cluster.</summary>
    public static string Example(string relative) => Path.Combine(Fixtures.RepoRoot, "examples", "cluster", relative);

    public static string DotnetHost() =>
        Environment.ProcessPath is { } p && Path.GetFileNameWithoutExtension(p) == "dotnet" ? p
        : Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") ?? "dotnet";

    /// <summary>Runs `bash -c SCRIPT` (or `bash FILE`) with the fake tools first on PATH and the given variables; returns the exit code and output.</summary>
    public (int Code, string Output) Bash(string? file, string? script, IReadOnlyDictionary<string, string> env)
    {
        var info = new ProcessStartInfo("bash") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false, WorkingDirectory = _dir.Path };
        if (file is not null) info.ArgumentList.Add(file);
        else { info.ArgumentList.Add("-c"); info.ArgumentList.Add(script!); }
        info.Environment["PATH"] = Bin + ":" + Environment.GetEnvironmentVariable("PATH");
        info.Environment["FAKE_SBATCH_STATE"] = _dir["slurm-state"];
        foreach (var (k, v) in env) info.Environment[k] = v;
        using var p = Process.Start(info)!;
        var stdout = p.StandardOutput.ReadToEndAsync();
        string stderr = p.StandardError.ReadToEnd();
        p.WaitForExit();
        return (p.ExitCode, stdout.Result + stderr);
    }

    /// <summary>The fake sbatch's log of submissions, and the output of every job it ran.</summary>
    public string SlurmLog()
    {
        string state = _dir["slurm-state"];
        if (!Directory.Exists(state)) return "(no job submitted)";
        return string.Join("\n", Directory.GetFiles(state).Order().Select(f => $"== {Path.GetFileName(f)}\n{File.ReadAllText(f)}"));
    }

    /// <summary>A Job manifest's parts the test needs: completions, completion mode, the container's script and env.</summary>
    public sealed record K8sJob(string Name, int Completions, string? CompletionMode, string Script, IReadOnlyDictionary<string, string> Env);

    public static K8sJob ReadJob(string path)
    {
        var yaml = new YamlStream();
        using (var reader = new StreamReader(path)) yaml.Load(reader);
        var root = (YamlMappingNode)yaml.Documents.Single().RootNode;
        YamlNode At(YamlNode node, params string[] keys) => keys.Aggregate(node, (n, k) => ((YamlMappingNode)n).Children[new YamlScalarNode(k)]);
        string S(YamlNode n) => ((YamlScalarNode)n).Value!;
        Assert.Equal("batch/v1", S(At(root, "apiVersion")));
        Assert.Equal("Job", S(At(root, "kind")));
        var spec = (YamlMappingNode)At(root, "spec");
        var container = (YamlMappingNode)((YamlSequenceNode)At(spec, "template", "spec", "containers")).Children.Single();
        Assert.Equal(["/bin/bash", "-c"], ((YamlSequenceNode)At(container, "command")).Children.Select(S));
        string script = S(((YamlSequenceNode)At(container, "args")).Children.Single());
        var env = ((YamlSequenceNode)At(container, "env")).Children.Cast<YamlMappingNode>().ToDictionary(e => S(At(e, "name")), e => S(At(e, "value")));
        spec.Children.TryGetValue(new YamlScalarNode("completionMode"), out var mode);
        return new K8sJob(S(At(root, "metadata", "name")), int.Parse(S(At(spec, "completions"))), mode is null ? null : S(mode), script, env);
    }

    /// <summary>
    /// Runs a Job's pods' script once per index (JOB_COMPLETION_INDEX = 0 … completions − 1, in reverse), with the Job's
    /// env overridden by <paramref name="overrides"/> (the test's paths instead of /work).
    /// </summary>
    public void RunJob(K8sJob job, IReadOnlyDictionary<string, string> overrides)
    {
        for (int index = job.Completions - 1; index >= 0; index--)
        {
            var env = new Dictionary<string, string>(job.Env);
            foreach (var (k, v) in overrides) env[k] = v;
            if (job.CompletionMode == "Indexed") env["JOB_COMPLETION_INDEX"] = index.ToString();
            var (code, output) = Bash(null, job.Script, env);
            Assert.True(code == 0, $"{job.Name} index {index}: exit {code}\n{output}");
        }
    }
}
