using Irr.IO;
using Irr.Model;
using System.Numerics.Tensors;
using Irr.Tensors;

namespace Irr.Realign;

/// <summary>
/// IRR step 1: the safety vector <c>v = W_A − W_U</c> (aligned minus unaligned: it points from unsafe to
/// safe) for every target weight, stored as float32 under the full Hugging Face name.
/// </summary>
public static class SafetyVector
{
    /// <summary>
    /// Computes and writes the safety vector, streaming one tensor at a time. <paramref name="progress"/>
    /// is called after each tensor.
    /// </summary>
    public static void Compute(IWeightSource aligned, IWeightSource unaligned, IReadOnlyList<string> modules, string output,
        IReadOnlyDictionary<string, string> metadata, Action<string>? progress = null)
    {
        modules = TargetModules.For(aligned.Config, modules);
        Architecture.RequireSame(aligned, unaligned, modules);
        var names = TargetModules.WeightNames(aligned.Config, modules).ToList();
        var shapes = aligned.Config.ExpectedTensors().ToDictionary(t => t.Name, t => t.Shape);
        var specs = names.Select(n => new TensorSpec(n, TensorDType.F32, shapes[n])).ToList();
        CheckpointWriter.WriteFile(output, specs, metadata, writer =>
        {
            float[] a = [], u = [];
            foreach (string name in names)
            {
                var wa = aligned.Load(name, ref a);
                var wu = unaligned.Load(name, ref u);
                var v = new float[wa.Length];
                TensorPrimitives.Subtract(wa, wu, v);                 // v = W_A − W_U
                FloatChecks.RequireFinite(wa, name, "aligned model");
                FloatChecks.RequireFinite(wu, name, "unaligned model");
                writer.Write(name, v);
                progress?.Invoke(name);
            }
        });
    }
}
