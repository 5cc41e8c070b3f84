# The PyTorch peer for `medsynth train`: a standard conditional DCGAN trained for a fixed wall-clock time on a
# MedMNIST-style npz (28x28 grey), then N images per class from its EMA generator written as an npz in the
# layout medsynth's npz loader reads (train_images uint8 [N,28,28], train_labels [N,1]), so both generators are
# judged by the same classifier (bench/train-gan.ts --judge-npz).
#
#   G: z100 ++ embed(label, 10) -> linear 128*7*7 (BN, ReLU) -> convT 64 k4 s2 (BN, ReLU) -> convT 1 k4 s2 -> tanh
#   D: [x, label map] -> conv 64 k4 s2 (LeakyReLU .2) -> conv 128 k4 s2 (BN, LeakyReLU .2) -> linear 1
#   hinge loss, Adam 2e-4 (0.5, 0.999), batch 64, G EMA 0.999.
#
# usage: OPENBLAS_NUM_THREADS=1 python3 cdcgan_pytorch.py <npz> <minutes> <out.npz> [threads=2] [per_class=1000]
# Prints JSON lines: progress every 30 s and a final summary (images/s, steps, parameter counts).
import copy, json, sys, time
import numpy as np
import torch, torch.nn as nn, torch.nn.functional as F

npz, minutes, out = sys.argv[1], float(sys.argv[2]), sys.argv[3]
threads = int(sys.argv[4]) if len(sys.argv) > 4 else 2
per_class = int(sys.argv[5]) if len(sys.argv) > 5 else 1000
torch.set_num_threads(threads)
torch.manual_seed(0)
np.random.seed(0)

d = np.load(npz)
x = torch.tensor(d['train_images'], dtype=torch.float32).div(127.5).sub(1).unsqueeze(1)
y = torch.tensor(d['train_labels'].reshape(-1), dtype=torch.long)
K = int(y.max()) + 1

class G(nn.Module):
    def __init__(s):
        super().__init__()
        s.emb = nn.Embedding(K, 10)
        s.fc = nn.Linear(110, 128 * 7 * 7, bias=False); s.bn0 = nn.BatchNorm1d(128 * 7 * 7)
        s.net = nn.Sequential(nn.ConvTranspose2d(128, 64, 4, 2, 1, bias=False), nn.BatchNorm2d(64), nn.ReLU(True),
                              nn.ConvTranspose2d(64, 1, 4, 2, 1), nn.Tanh())
    def forward(s, z, c):
        h = F.relu(s.bn0(s.fc(torch.cat([z, s.emb(c)], 1))))
        return s.net(h.view(-1, 128, 7, 7))

class D(nn.Module):
    def __init__(s):
        super().__init__()
        s.emb = nn.Embedding(K, 28 * 28)
        s.net = nn.Sequential(nn.Conv2d(2, 64, 4, 2, 1), nn.LeakyReLU(0.2, True),
                              nn.Conv2d(64, 128, 4, 2, 1, bias=False), nn.BatchNorm2d(128), nn.LeakyReLU(0.2, True),
                              nn.Flatten(), nn.Linear(128 * 7 * 7, 1))
    def forward(s, img, c):
        return s.net(torch.cat([img, s.emb(c).view(-1, 1, 28, 28)], 1))

g, dnet = G(), D()
g_ema = copy.deepcopy(g).eval()
og = torch.optim.Adam(g.parameters(), 2e-4, betas=(0.5, 0.999))
od = torch.optim.Adam(dnet.parameters(), 2e-4, betas=(0.5, 0.999))
count = lambda m: sum(p.numel() for p in m.parameters())
bs, n = 64, x.shape[0]
t0 = time.time(); last = t0; steps = 0
while time.time() - t0 < minutes * 60:
    idx = torch.randint(0, n, (bs,))
    real, c = x[idx], y[idx]
    z = torch.randn(bs, 100)
    fake = g(z, c)
    ld = F.relu(1 - dnet(real, c)).mean() + F.relu(1 + dnet(fake.detach(), c)).mean()
    od.zero_grad(set_to_none=True); ld.backward(); od.step()
    lg = -dnet(fake, c).mean()
    og.zero_grad(set_to_none=True); lg.backward(); og.step()
    with torch.no_grad():
        for pe, p in zip(g_ema.parameters(), g.parameters()): pe.lerp_(p, 0.001)
        for be, b in zip(g_ema.buffers(), g.buffers()): be.copy_(b)
    steps += 1
    if time.time() - last > 30:
        last = time.time()
        print(json.dumps({'seconds': round(last - t0, 1), 'steps': steps, 'd': float(ld), 'g': float(lg)}), flush=True)
seconds = time.time() - t0
with torch.no_grad():
    labels = torch.arange(K).repeat_interleave(per_class)
    imgs = torch.cat([g_ema(torch.randn(len(b), 100), b) for b in labels.split(500)])
u8 = imgs.add(1).mul(127.5).round().clamp(0, 255).to(torch.uint8).squeeze(1).numpy()
lab = labels.numpy().reshape(-1, 1).astype(np.uint8)
empty = np.zeros((0, 28, 28), np.uint8)
np.savez_compressed(out, train_images=u8, train_labels=lab, val_images=empty, val_labels=lab[:0],
                    test_images=empty, test_labels=lab[:0])
print(json.dumps({'peer': 'pytorch-cdcgan', 'torch': torch.__version__, 'threads': threads, 'seconds': round(seconds, 1),
                  'steps': steps, 'images_per_second': round(steps * bs / seconds, 1),
                  'g_params': count(g), 'd_params': count(dnet), 'out': out}), flush=True)
