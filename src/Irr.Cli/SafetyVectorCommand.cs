using System.CommandLine;
using Irr.Realign;

namespace Irr.Cli;

/// <summary><c>irr safety-vector</c>: v = W_A − W_U for the target modules, as float32 safetensors (<see cref="SafetyVectorJob"/>).</summary>
internal static class SafetyVectorCommand
{
    public static Command Create() => CommandSupport.TensorWriter(typeof(SafetyVectorJob));
}
