using System.CommandLine;
using System.CommandLine.Help;
using Irr.Eval;
using Irr.Jobs;

namespace Irr.Cli;

/// <summary>
/// TRANSITIONAL (issue 25): the serving-engine options of <c>irr sweep</c>'s hand-built command, until the sweep's job
/// holds <see cref="EngineSettings"/> itself; then this file goes. The options are the record's declared ones (as
/// <c>irr generate</c>, <c>irr eval safety</c> and <c>irr eval task</c> have them), plus the sweep's own <c>--engine-cache</c>,
/// bound by the record's schema and resolved by <see cref="EngineSettings.Resolve"/>.
/// </summary>
/// <param name="commandName">The command's name for messages ("sweep").</param>
/// <param name="cacheDefault">Where the answer cache goes by default, for the help text of --engine-cache.</param>
/// <param name="sharedApiKeyEnv">The command's --api-key-env when it has one already (the judge's); else the engine adds its own.</param>
internal sealed class EngineCommandOptions(string commandName, string cacheDefault, Option? sharedApiKeyEnv = null)
{
    private readonly JobCommand declared = new(typeof(EngineSettings));
    private readonly Option<string?> cache = new("--engine-cache") { Description = $"serving engine: answer cache file (default {cacheDefault})" };

    /// <summary>Adds the options to <paramref name="command"/> (--api-key-env only when it is the engine's own).</summary>
    public void AddTo(Command command)
    {
        foreach (var option in Declared(declared).Where(o => sharedApiKeyEnv is null || o.Name != "--api-key-env"))
            command.Options.Add(option);
        command.Options.Add(cache);
    }

    /// <summary>The engine the options describe, or null when none is given (<see cref="EngineSettings.Resolve"/>).</summary>
    /// <exception cref="IrrException">A value does not convert, the options contradict each other, or --api-key-env is given alone where only the engine uses it.</exception>
    public EngineOptions? Build(ParseResult r)
    {
        var given = declared.Given(r);
        if (sharedApiKeyEnv is not null && r.GetResult(sharedApiKeyEnv) is { Implicit: false } key) given["api-key-env"] = key.Tokens.Select(t => t.Value).ToList();
        var settings = given.Count == 0 ? null : Bind<EngineSettings>(commandName, given);
        return EngineSettings.Resolve(commandName, null, settings, r.GetValue(cache), keyShared: sharedApiKeyEnv is not null);
    }

    /// <summary>The options a record declares, as its schema makes them (<see cref="JobCommand"/>).</summary>
    internal static IEnumerable<Option> Declared(JobCommand record) => record.Options.Where(o => o is not HelpOption);

    /// <summary>The options record bound from the given values; a message names <paramref name="command"/>, not the record.</summary>
    /// <exception cref="IrrException">A value does not convert.</exception>
    internal static T Bind<T>(string command, IReadOnlyDictionary<string, IReadOnlyList<string>> given)
    {
        string prefix = typeof(T).Name + ": ";
        try
        {
            return JobSchema.Of<T>().Bind<T>(given);
        }
        catch (IrrException e) when (e.Message.StartsWith(prefix, StringComparison.Ordinal))
        {
            throw new IrrException($"{command}: {e.Message[prefix.Length..]}", e);
        }
    }
}

/// <summary>TRANSITIONAL (issue 25): the judge options of <c>irr sweep</c>'s hand-built command (see <see cref="EngineCommandOptions"/>).</summary>
internal static partial class EvalSafetyCommand
{
    /// <summary>
    /// The judge options of <c>irr sweep</c>, with the same meaning as <c>irr eval safety</c>'s: <see cref="JudgeSettings"/>'s
    /// declared options plus the sweep's own <c>--judge-cache</c>, resolved to <see cref="EvalSafetyJob.Judge"/>.
    /// </summary>
    /// <param name="commandName">The command's name for messages ("sweep").</param>
    /// <param name="cacheDefault">Where the verdict cache goes by default, for the help text of --judge-cache.</param>
    internal sealed class JudgeCommandOptions(string commandName, string cacheDefault)
    {
        private readonly JobCommand declared = new(typeof(JudgeSettings));
        private readonly Option<string?> cache = new("--judge-cache") { Description = $"http judge: verdict cache file (default {cacheDefault})" };

        /// <summary>--api-key-env, which the serving engine's options share.</summary>
        public Option ApiKeyEnv => declared.OptionOf("api-key-env");

        /// <summary>Adds the options to <paramref name="command"/>.</summary>
        public void AddTo(Command command)
        {
            foreach (var option in EngineCommandOptions.Declared(declared)) command.Options.Add(option);
            command.Options.Add(cache);
        }

        /// <summary><paramref name="job"/> with the judge the options describe (<see cref="JudgeSettings.ToJudge"/>).</summary>
        /// <exception cref="IrrException">A value does not convert, or the options contradict each other.</exception>
        public EvalSafetyJob Apply(ParseResult r, EvalSafetyJob job) => job with
        {
            Judge = EngineCommandOptions.Bind<JudgeSettings>(commandName, declared.Given(r)).ToJudge(commandName, r.GetValue(cache)),
        };
    }
}
