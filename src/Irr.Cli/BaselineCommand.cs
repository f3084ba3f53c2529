using System.CommandLine;

namespace Irr.Cli;

/// <summary>
/// <c>irr baseline</c>: the cheaper post-hoc safety fixes IRR is compared with (docs/BASELINES.md): RESTA (add the
/// safety vector back), Safe LoRA (project LoRA updates onto the alignment subspace), Antidote (prune the weights of highest
/// Wanda score on harmful data) and interpolation (θ_A + α·(θ_F − θ_A)).
/// </summary>
internal static class BaselineCommand
{
    public static Command Create() => new("baseline", "The post-hoc baselines IRR is compared with: RESTA (resta), Safe LoRA (safelora), Antidote (antidote) and interpolation (interpolate)")
    {
        BaselineRestaCommand.Create(),
        BaselineSafeLoraCommand.Create(),
        BaselineAntidoteCommand.Create(),
        BaselineInterpolateCommand.Create(),
    };
}
