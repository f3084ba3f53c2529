using System.CommandLine;

namespace Irr.Cli;

/// <summary>
/// <c>irr baseline</c>: the cheaper post-hoc safety fixes IRR is compared with (docs/BASELINES.md): RESTA (add the
/// safety vector back), Safe LoRA (project LoRA updates onto the alignment subspace) and Safe Delta (keep the deltas
/// that fit a safety budget, compensated).
/// </summary>
internal static class BaselineCommand
{
    public static Command Create() => new("baseline", "The post-hoc baselines IRR is compared with: RESTA (resta), Safe LoRA (safelora) and Safe Delta (safedelta)")
    {
        BaselineRestaCommand.Create(),
        BaselineSafeLoraCommand.Create(),
        BaselineSafeDeltaCommand.Create(),
    };
}
