using Irr.Eval;

namespace Irr.Tests.Eval;

/// <summary>Test shorthands for the engine's and the judge's HTTP settings.</summary>
internal static class EngineTestSupport
{
    /// <summary><paramref name="engine"/> with its HTTP settings changed by <paramref name="change"/>.</summary>
    public static RunningEngine WithHttp(this RunningEngine engine, Func<HttpSettings, HttpSettings> change) => engine with { Http = change(engine.Http) };

    /// <summary><paramref name="judge"/> with its HTTP settings changed by <paramref name="change"/>.</summary>
    public static HttpJudgeOptions WithHttp(this HttpJudgeOptions judge, Func<HttpSettings, HttpSettings> change) => judge with { Http = change(judge.Http) };
}
